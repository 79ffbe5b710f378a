package gmailext

import (
	"errors"
	"fmt"

	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// ErrUTF7 is wrapped by the error for a label that is not valid modified
// UTF-7.
var ErrUTF7 = errors.New("invalid modified UTF-7")

// EncodeUTF7 encodes a UTF-8 label or mailbox name in modified UTF-7
// (RFC 3501 5.1.3), as Gmail sends and expects label names (Gmail IMAP
// extensions: "labels ... are encoded in modified UTF-7"): the mailbox
// name codec of internal/imapconn.
func EncodeUTF7(s string) string { return imapconn.EncodeUTF7(s) }

// DecodeUTF7 decodes a modified UTF-7 name into UTF-8 (imapconn's strict
// DecodeMailbox); its error wraps ErrUTF7.
func DecodeUTF7(s string) (string, error) {
	d, err := imapconn.DecodeMailbox(s)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrUTF7, err)
	}
	return d, nil
}
