package fetch

// FolderCheck is what the next backup would do with one folder, found
// without writing anything (mailkeep check).
type FolderCheck struct {
	Folder   string `json:"folder"`
	Server   int    `json:"server_messages"`   // messages on the server; -1: folder gone from the server
	Archived int    `json:"archived_messages"` // live messages in the archive
	New      int    `json:"new_messages"`      // messages a backup would fetch
	NewBytes int64  `json:"new_bytes"`
	// Note says why a folder needs more than fetching new mail: "new
	// folder", "UIDVALIDITY changed", "gone from server".
	Note string `json:"note,omitempty"`
}

// Check is a survey of an account against its archive.
type Check struct {
	Folders []FolderCheck `json:"folders"`
}

// Totals sums the survey.
func (c Check) Totals() (newMsgs int, newBytes int64) {
	for _, f := range c.Folders {
		newMsgs += f.New
		newBytes += f.NewBytes
	}
	return newMsgs, newBytes
}
