package archive

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestRefString(t *testing.T) {
	for _, tc := range []struct {
		r         Ref
		str, name string
	}{
		{Ref{Account: "a@h:993", Folder: "INBOX", UIDValidity: 7, UID: 42}, `account a@h:993: folder "INBOX" uid 42 (uidvalidity 7)`, "UID 42 (UIDVALIDITY 7)"},
		{Ref{Folder: "Work/Sub", UID: 3}, `folder "Work/Sub" uid 3`, "UID 3"},
		{Ref{Account: "bob@h:995", Folder: "INBOX", UIDL: "0001a"}, `account bob@h:995: folder "INBOX" uidl "0001a"`, "UIDL 0001a"},
		{Ref{Account: "x", Folder: "Trash"}, `account x: folder "Trash"`, ""},
	} {
		if got := tc.r.String(); got != tc.str {
			t.Errorf("%+v.String() = %q, want %q", tc.r, got, tc.str)
		}
		if got := tc.r.Message(); got != tc.name {
			t.Errorf("%+v.Message() = %q, want %q", tc.r, got, tc.name)
		}
	}
	err := error(&MessageError{Ref: Ref{Folder: "INBOX", UID: 9}, Err: io.ErrUnexpectedEOF})
	var me *MessageError
	if !errors.As(err, &me) || me.UID != 9 || !errors.Is(err, io.ErrUnexpectedEOF) || err.Error() != `folder "INBOX" uid 9: unexpected EOF` {
		t.Errorf("MessageError: %v", err)
	}
}

// TestChecked: only the exact bytes read to io.EOF; every other outcome
// is an error wrapping ErrDamaged that says what differs.
func TestChecked(t *testing.T) {
	const body = "Subject: x\r\n\r\nhello\r\n"
	sum := "" // computed below
	{
		c := NewChecked(strings.NewReader(body), int64(len(body)), "")
		io.ReadAll(c)
		sum = c.Sum()
	}
	for _, tc := range []struct {
		name string
		r    io.Reader
		size int64
		sum  string
		want string // "" for no error
	}{
		{"exact", strings.NewReader(body), int64(len(body)), sum, ""},
		{"exact, size only", strings.NewReader(body), int64(len(body)), "", ""},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader(body)), int64(len(body)), sum, ""},
		{"short", strings.NewReader(body[:10]), int64(len(body)), sum, "10 bytes, the catalog says"},
		{"long", strings.NewReader(body + "x"), int64(len(body)), sum, "more than the"},
		{"other bytes", strings.NewReader(strings.ToUpper(body)), int64(len(body)), sum, "SHA-256 is"},
		{"read error", io.MultiReader(strings.NewReader(body[:5]), iotest.ErrReader(io.ErrClosedPipe)), int64(len(body)), sum, "reading after 5 bytes"},
	} {
		c := NewChecked(tc.r, tc.size, tc.sum)
		got, err := io.ReadAll(c)
		if tc.want == "" {
			if err != nil || string(got) != body || c.Err() != nil || c.Finish() != nil {
				t.Errorf("%s: %q, %v", tc.name, got, err)
			}
			continue
		}
		if !errors.Is(err, ErrDamaged) || !strings.Contains(err.Error(), tc.want) || !errors.Is(c.Finish(), ErrDamaged) {
			t.Errorf("%s: %v, want ErrDamaged with %q", tc.name, err, tc.want)
		}
		if int64(len(got)) > tc.size {
			t.Errorf("%s: %d bytes given, more than the size %d", tc.name, len(got), tc.size)
		}
	}
	// Finish reads what the caller left.
	c := NewChecked(strings.NewReader(body), int64(len(body))-1, "")
	c.Read(make([]byte, 3))
	if err := c.Finish(); !errors.Is(err, ErrDamaged) {
		t.Errorf("Finish of a long message: %v", err)
	}
}
