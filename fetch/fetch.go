// Package fetch holds what the fetchers (imapsrc for IMAP, pop3src for
// POP3) report: run statistics and per-folder, per-message failures.
package fetch

import "github.com/mailkeep/mailkeep/provlimit"

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
	// Stopped, when set, is why the run stopped before the end although
	// nothing failed: a provider's daily limit (provlimit.ErrDailyLimit) or
	// the run budget (provlimit.ErrBudget). It is in Failures too (outcome
	// partial); what was stored is committed and the next run continues
	// with Remaining.
	Stopped   error
	Remaining provlimit.Remaining
}
