// Package fetch holds what the fetchers (imapsrc for IMAP, pop3src for
// POP3) report: run statistics and per-folder, per-message failures.
package fetch

// Stats count what a backup did.
type Stats struct {
	Folders     int // folders selected
	Unchanged   int // of which unchanged since the last run
	Fetched     int
	Bytes       int64
	FlagChanges int
	Expunged    int     // messages newly seen gone from the server
	Rekeyed     int     // messages recognised under a new UIDVALIDITY
	Deleted     int     // POP3: messages deleted from the server
	Failures    []error // each an *archive.MessageError naming the folder and message
}
