package imapconn

import (
	"errors"
	"net"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestParseStatus: the status part of a tagged response, its response
// code and its text.
func TestParseStatus(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want imap.StatusResponse
	}{
		{"NO [TRYCREATE] no such mailbox", imap.StatusResponse{Type: "NO", Code: "TRYCREATE", Text: "no such mailbox"}},
		{"no [overquota] quota exceeded", imap.StatusResponse{Type: "NO", Code: "OVERQUOTA", Text: "quota exceeded"}},
		{"BAD command unknown", imap.StatusResponse{Type: "BAD", Text: "command unknown"}},
		{"OK [APPENDUID 7 42] done", imap.StatusResponse{Type: "OK", Code: "APPENDUID", Text: "done"}},
		{"NO [unterminated code", imap.StatusResponse{Type: "NO", Text: "[unterminated code"}},
		{"NO", imap.StatusResponse{Type: "NO"}},
	} {
		if got := ParseStatus(tc.in); *got != tc.want {
			t.Errorf("ParseStatus(%q) = %+v, want %+v", tc.in, *got, tc.want)
		}
	}
}

// TestRawStatusError: a tagged NO or BAD on the raw connection is an
// *imap.Error (the type go-imap reports them with), and an OK keeps its
// response code in the text (APPENDUID is read from it).
func TestRawStatusError(t *testing.T) {
	for _, tc := range []struct {
		line string
		want *imap.Error
		ok   string
	}{
		{"R1 NO [TRYCREATE] Mailbox doesn't exist: Foo\r\n", &imap.Error{Type: "NO", Code: "TRYCREATE", Text: "Mailbox doesn't exist: Foo"}, ""},
		{"R1 BAD Error in IMAP command APPEND: 8bit data\r\n", &imap.Error{Type: "BAD", Text: "Error in IMAP command APPEND: 8bit data"}, ""},
		{"R1 OK [APPENDUID 7 42] Append completed.\r\n", nil, "[APPENDUID 7 42] Append completed."},
	} {
		client, server := net.Pipe()
		r := &Raw{acct: "test", stop: func() bool { return false }}
		r.set(client)
		delete(r.g.pending, greeting)
		go func() {
			server.Write([]byte("* 3 EXISTS\r\n" + tc.line))
		}()
		untagged, text, err := r.ReadTagged("R1")
		client.Close()
		server.Close()
		if len(untagged) != 1 || untagged[0] != "* 3 EXISTS" {
			t.Errorf("%q: untagged %q", tc.line, untagged)
		}
		if tc.want == nil {
			if err != nil || text != tc.ok {
				t.Errorf("%q: %q, %v; want %q", tc.line, text, err, tc.ok)
			}
			continue
		}
		var ie *imap.Error
		if !errors.As(err, &ie) || *ie != *tc.want {
			t.Errorf("%q: error %v (%T), want %+v", tc.line, err, err, tc.want)
		}
	}
}
