// Package fetch holds what the fetchers (imapsrc for IMAP, pop3src for
// POP3) report: run statistics and per-folder, per-message failures.
package fetch

import (
	"fmt"

	"github.com/mailkeep/mailkeep/internal/provlimit"
)

// Stats count what a backup did.
type Stats struct {
	Folders     int // folders selected
	Unchanged   int // of which unchanged since the last run
	Fetched     int
	Bytes       int64
	FlagChanges int
	Expunged    int // messages newly seen gone from the server
	Rekeyed     int // messages recognised under a new UIDVALIDITY
	Deleted     int // POP3: messages deleted from the server
	Failures    []error
	// Stopped, when set, is why the run stopped before the end although
	// nothing failed: a provider's daily limit (provlimit.ErrDailyLimit) or
	// the run budget (provlimit.ErrBudget). It is in Failures too (outcome
	// partial); what was stored is committed and the next run continues
	// with Remaining.
	Stopped   error
	Remaining provlimit.Remaining
}

// MessageError is a failure confined to one folder or one message of it.
type MessageError struct {
	Account string
	Folder  string
	UID     uint32 // IMAP; 0 when not about one message
	UIDL    string // POP3
	Err     error
}

func (e *MessageError) Error() string {
	switch {
	case e.UID != 0:
		return fmt.Sprintf("%s: folder %q: uid %d: %v", e.Account, e.Folder, e.UID, e.Err)
	case e.UIDL != "":
		return fmt.Sprintf("%s: folder %q: uidl %q: %v", e.Account, e.Folder, e.UIDL, e.Err)
	}
	return fmt.Sprintf("%s: folder %q: %v", e.Account, e.Folder, e.Err)
}

func (e *MessageError) Unwrap() error { return e.Err }
