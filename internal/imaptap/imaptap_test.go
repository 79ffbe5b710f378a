package imaptap

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
)

// hooks replace command lines naming DROP with "x NOOP" and response
// lines "* HIDE" with "* SHOWN"; they record what they saw.
type hooks struct{ cmds, resps []string }

func (h *hooks) Command(line []byte) []byte {
	h.cmds = append(h.cmds, string(line))
	if tag, name, _ := Command(line); name == "DROP" {
		return []byte(tag + " NOOP\r\n")
	}
	return line
}

func (h *hooks) Response(line []byte) []byte {
	h.resps = append(h.resps, string(line))
	if string(line) == "* HIDE\r\n" {
		return []byte("* SHOWN\r\n")
	}
	return line
}

// pair returns the client end and the tapped server end of a loopback
// connection.
func pair(t *testing.T) (net.Conn, *Conn, *hooks) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	h := &hooks{}
	tl := &Listener{Listener: ln, New: func(*Conn) Hooks { return h }}
	done := make(chan net.Conn, 1)
	go func() {
		c, err := tl.Accept()
		if err != nil {
			done <- nil
			return
		}
		done <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv := <-done
	if srv == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); srv.Close() })
	return client, srv.(*Conn), h
}

func TestCommands(t *testing.T) {
	client, srv, h := pair(t)
	in := "a1 APPEND INBOX {12+}\r\nDROP x\r\nabcd (\\Seen) {3}\r\nxyz\r\n" + // MULTIAPPEND: one command
		"a2 DROP {5+}\r\nhello\r\n" + // replaced: its literal is swallowed
		"a3 NOOP\r\n" +
		"a4 " + strings.Repeat("x", MaxLine+10) + "\r\n" + // over-long: passed as is
		"a5 LOGOUT\r\n"
	go func() { io.WriteString(client, in); client.(*net.TCPConn).CloseWrite() }()
	got, err := io.ReadAll(srv)
	if err != nil {
		t.Fatal(err)
	}
	want := "a1 APPEND INBOX {12+}\r\nDROP x\r\nabcd (\\Seen) {3}\r\nxyz\r\n" +
		"a2 NOOP\r\n" +
		"a3 NOOP\r\n" +
		"a4 " + strings.Repeat("x", MaxLine+10) + "\r\n" +
		"a5 LOGOUT\r\n"
	if string(got) != want {
		t.Errorf("server read %q...\nwant %q...", trunc(got), trunc([]byte(want)))
	}
	wantCmds := []string{"a1 APPEND INBOX {12+}\r\n", "a2 DROP {5+}\r\n", "a3 NOOP\r\n", "a5 LOGOUT\r\n"}
	if strings.Join(h.cmds, "|") != strings.Join(wantCmds, "|") {
		t.Errorf("hooks saw %q, want %q", h.cmds, wantCmds)
	}
}

func trunc(b []byte) string {
	if len(b) > 200 {
		return string(b[:200])
	}
	return string(b)
}

func TestResponses(t *testing.T) {
	client, srv, h := pair(t)
	// Written in pieces that split lines and a literal whose bytes look
	// like a line the hook would change.
	parts := []string{"* HI", "DE\r\n* 1 FETCH (BODY[] {8}\r\n* H", "IDE\r\n)\r\na1 OK done\r\n"}
	for _, p := range parts {
		if _, err := srv.Write([]byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	srv.Close()
	got, err := io.ReadAll(bufio.NewReader(client))
	if err != nil {
		t.Fatal(err)
	}
	if want := "* SHOWN\r\n* 1 FETCH (BODY[] {8}\r\n* HIDE\r\n)\r\na1 OK done\r\n"; string(got) != want {
		t.Errorf("client read %q, want %q", got, want)
	}
	if len(h.resps) != 4 {
		t.Errorf("hooks saw %q, want 4 lines (not the literal)", h.resps)
	}
}

func TestParse(t *testing.T) {
	for _, tt := range []struct {
		line string
		n    int64
		ok   bool
	}{
		{"a APPEND x {12}\r\n", 12, true},
		{"a APPEND x {12+}\r\n", 12, true},
		{"a NOOP\r\n", 0, false},
		{"a x {}\r\n", 0, false},
		{"a x {-1}\r\n", 0, false},
	} {
		if n, ok := literal([]byte(tt.line)); n != tt.n || ok != tt.ok {
			t.Errorf("literal(%q) = %d, %v", tt.line, n, ok)
		}
	}
	if tag, st, rest, ok := Tagged([]byte("A7 no [TOOBIG] big\r\n")); !ok || tag != "A7" || st != "NO" || !bytes.Equal(rest, []byte("[TOOBIG] big\r\n")) {
		t.Errorf("Tagged = %q %q %q %v", tag, st, rest, ok)
	}
	for _, l := range []string{"* OK x\r\n", "+ go\r\n", "A1 FETCH x\r\n"} {
		if _, _, _, ok := Tagged([]byte(l)); ok {
			t.Errorf("Tagged(%q) ok", l)
		}
	}
	if tag, name, args := Command([]byte("t1 uid fetch 1:* (UID)\r\n")); tag != "t1" || name != "UID FETCH" || args != "1:* (UID)" {
		t.Errorf("Command = %q %q %q", tag, name, args)
	}
}
