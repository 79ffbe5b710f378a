package archive

import (
	"fmt"
	"strconv"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// Ref names one message, or one folder when it has neither UID nor UIDL,
// in errors, logs and reports: the account, the folder and the message's
// UID (with its UIDVALIDITY when known) or POP3 UIDL, as `mailkeep show
// FOLDER UID` takes them. Never a catalog row id: the user cannot find a
// message by it.
type Ref struct {
	Account     string // account name or user@host:port; "" when not known
	Folder      string
	UIDValidity uint32 // 0: not known, or not worth saying
	UID         uint32 // IMAP; 0 with UIDL set, or for the folder as a whole
	UIDL        string // POP3
}

// RefTo is the Ref of a catalogued message of folder.
func RefTo(account, folder string, m *catalog.Message) Ref {
	return Ref{Account: account, Folder: folder, UIDValidity: m.UIDValidity, UID: m.UID, UIDL: m.UIDL}
}

// Message names the message alone: "UID 4711 (UIDVALIDITY 7)", "UIDL
// abc", or "" for a folder.
func (r Ref) Message() string {
	switch {
	case r.UIDL != "":
		return "UIDL " + r.UIDL
	case r.UID != 0 && r.UIDValidity != 0:
		return "UID " + strconv.FormatUint(uint64(r.UID), 10) + " (UIDVALIDITY " + strconv.FormatUint(uint64(r.UIDValidity), 10) + ")"
	case r.UID != 0:
		return "UID " + strconv.FormatUint(uint64(r.UID), 10)
	}
	return ""
}

// String is `account A: folder "F" uid 4711 (uidvalidity 7)` (or `uidl
// "abc"`), with the parts that are known.
func (r Ref) String() string {
	s := fmt.Sprintf("folder %q", r.Folder)
	if r.Account != "" {
		s = "account " + r.Account + ": " + s
	}
	switch {
	case r.UIDL != "":
		s += fmt.Sprintf(" uidl %q", r.UIDL)
	case r.UID != 0:
		s += fmt.Sprintf(" uid %d", r.UID)
		if r.UIDValidity != 0 {
			s += fmt.Sprintf(" (uidvalidity %d)", r.UIDValidity)
		}
	}
	return s
}

// MessageError is a failure confined to the message (or folder) its Ref
// names. Fetchers and export report one per failed message.
type MessageError struct {
	Ref
	Err error
}

func (e *MessageError) Error() string { return e.Ref.String() + ": " + e.Err.Error() }
func (e *MessageError) Unwrap() error { return e.Err }
