package imapconn

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/memimap"
)

func TestLineScan(t *testing.T) {
	big := strings.Repeat("a", MaxLine)
	for _, tt := range []struct {
		name  string
		in    string
		ends  int  // complete lines
		fails bool // over a bound
	}{
		{"short lines", "* OK hi\r\nA1 OK done\r\n", 2, false},
		{"literal with CRLF inside", "* 1 FETCH (BODY[] {10}\r\nab\r\ncd\r\nef UID 1)\r\n", 1, false},
		{"literal+ in a command", "A1 LOGIN {3+}\r\nbob {2+}\r\npw\r\n", 1, false},
		{"body literal over the bound", fmt.Sprintf("* 1 FETCH (BODY[] {%d}\r\n%s)\r\n", len(big)+5, big+"12345"), 1, false},
		{"partial body literal", fmt.Sprintf("* 1 FETCH (BODY[]<0> {%d}\r\n%s)\r\n", len(big)+1, big+"1"), 1, false},
		{"binary literal8", fmt.Sprintf("* 1 FETCH (BINARY[1] ~{%d}\r\n%s)\r\n", len(big)+1, big+"1"), 1, false},
		{"rfc822 literal", fmt.Sprintf("* 1 FETCH (RFC822 {%d}\r\n%s)\r\n", len(big)+1, big+"1"), 1, false},
		{"line at the bound", big[:MaxLine-2] + "\r\n", 1, false},
		{"line over the bound", big + "\r\n", 0, true},
		{"endless line", big + big, 0, true},
		{"header fields literal over the bound", fmt.Sprintf("* 1 FETCH (BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n%s)\r\n", len(big)+1, big+"1"), 0, true},
		{"name literal over the bound", fmt.Sprintf("* LIST () \"/\" {%d}\r\n%s\r\n", len(big)+1, big+"1"), 0, true},
		{"line over the bound across literals", "* 1 FETCH (X {1}\r\na " + big + ")\r\n", 0, true},
		{"long SEARCH", "* SEARCH " + strings.Repeat("123456 ", 300000) + "\r\n", 1, false},
		{"not a literal", "* OK {abc}\r\n* OK {}\r\n", 2, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, chunk := range []int{1, 7, 4096, len(tt.in)} {
				ends := 0
				s := lineScan{max: MaxLine, onEnd: func([]byte) { ends++ }}
				var err error
				for in := []byte(tt.in); len(in) > 0 && err == nil; {
					k := min(chunk, len(in))
					err = s.scan(in[:k])
					in = in[k:]
				}
				if (err != nil) != tt.fails || ends != tt.ends {
					t.Fatalf("chunk %d: err %v, %d lines; want fail=%v, %d lines", chunk, err, ends, tt.fails, tt.ends)
				}
			}
		})
	}
}

// FuzzLineScan: whatever the server sends and however it is split, the
// scanner never panics, agrees with itself across splits, and never
// accepts a line over the bound.
func FuzzLineScan(f *testing.F) {
	for _, s := range []string{
		"* OK hi\r\n", "* 1 FETCH (BODY[] {5}\r\nabcde)\r\n", "A1 OK\r\n* LIST () \"/\" {3}\r\na\x00b\r\n",
		"* SEARCH 1 2 3\r\n", "{99999999999999999999}\r\n", "}\r\n{\r\n", "* 1 FETCH (BODY[]<0> ~{2}\r\n\r\n)\r\n",
	} {
		f.Add([]byte(s), uint16(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint16) {
		const max = 64
		run := func(chunk int) (int, int64, error) {
			ends, longest := 0, int64(0)
			s := lineScan{max: max, onEnd: func([]byte) { ends++ }}
			var err error
			for p := in; len(p) > 0 && err == nil; {
				k := min(chunk, len(p))
				err = s.scan(p[:k])
				p = p[k:]
				if int64(s.lineLen) > longest {
					longest = int64(s.lineLen)
				}
			}
			return ends, longest, err
		}
		e1, l1, err1 := run(len(in) + 1)
		e2, _, err2 := run(int(split%64) + 1)
		if (err1 == nil) != (err2 == nil) || (err1 == nil && e1 != e2) {
			t.Fatalf("whole: %d lines %v; split: %d lines %v", e1, err1, e2, err2)
		}
		if err1 == nil && l1 > max && !bytes.Contains(bytes.ToUpper(in), []byte("SEARCH")) {
			t.Fatalf("accepted a line of %d bytes", l1)
		}
	})
}

// scripted runs one IMAP session per connection with script.
func scripted(t *testing.T, script func(c net.Conn, r *bufio.Reader)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				script(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}

// answer answers commands: CAPABILITY with caps, LOGIN with OK; it stops
// answering (but keeps reading) once silent returns true for a command.
func answer(caps string, silent func(cmd string) bool, seen *[]string, mu *sync.Mutex) func(net.Conn, *bufio.Reader) {
	return func(c net.Conn, r *bufio.Reader) {
		fmt.Fprintf(c, "* OK ready\r\n")
		quiet := false
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(l)
			if len(f) < 2 {
				continue
			}
			mu.Lock()
			*seen = append(*seen, strings.ToUpper(f[1]))
			mu.Unlock()
			if quiet || silent(strings.ToUpper(f[1])) {
				quiet = true
				continue
			}
			switch strings.ToUpper(f[1]) {
			case "CAPABILITY":
				fmt.Fprintf(c, "* CAPABILITY %s\r\n%s OK done\r\n", caps, f[0])
			case "LOGIN":
				fmt.Fprintf(c, "%s OK [CAPABILITY %s] logged in\r\n", f[0], caps)
			default:
				fmt.Fprintf(c, "%s OK done\r\n", f[0])
			}
		}
	}
}

func TestTimeoutAfterLogin(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := scripted(t, answer("IMAP4rev1", func(cmd string) bool { return cmd == "SELECT" || cmd == "EXAMINE" }, &seen, &mu))
	cfg := Config{Addr: addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 300 * time.Millisecond}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	_, err = c.Select("INBOX", nil).Wait()
	err = Explain(c, err)
	var ge *GuardError
	if !errors.Is(err, ErrTimeout) || !errors.As(err, &ge) || ge.Account != cfg.String() {
		t.Fatalf("SELECT on a silent server: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("took %s with a 300ms timeout", d)
	}

	// The raw connection too.
	r, err := DialRaw(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Cmd("EXAMINE INBOX"); !errors.Is(err, ErrTimeout) {
		t.Fatalf("raw EXAMINE on a silent server: %v", err)
	}
}

func TestSilentGreeting(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) { r.ReadString(0) })
	for _, tls := range []TLSMode{TLSNone, TLSStartTLS} {
		cfg := Config{Addr: addr, TLS: tls, User: "u", Password: "p", Timeout: 300 * time.Millisecond}
		start := time.Now()
		if _, err := Dial(context.Background(), cfg); err == nil || time.Since(start) > 3*time.Second {
			t.Errorf("TLS mode %d: silent greeting: %v after %s", tls, err, time.Since(start))
		}
		start = time.Now()
		if _, err := DialRaw(context.Background(), cfg); !errors.Is(err, ErrTimeout) || time.Since(start) > 3*time.Second {
			t.Errorf("TLS mode %d: raw, silent greeting: %v after %s", tls, err, time.Since(start))
		}
	}
}

// TestStartTLSNotOffered: imap:// to a server without STARTTLS fails with
// ErrNoStartTLS and no LOGIN is ever sent.
func TestStartTLSNotOffered(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	addr := scripted(t, answer("IMAP4rev1 AUTH=PLAIN", func(string) bool { return false }, &seen, &mu))
	cfg := Config{Addr: addr, TLS: TLSStartTLS, User: "u", Password: "p", Timeout: time.Second}
	if _, err := Dial(context.Background(), cfg); !errors.Is(err, ErrNoStartTLS) || !strings.Contains(err.Error(), "server does not offer STARTTLS") {
		t.Errorf("Dial: %v", err)
	}
	if _, err := DialRaw(context.Background(), cfg); !errors.Is(err, ErrNoStartTLS) {
		t.Errorf("DialRaw: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for _, c := range seen {
		if c != "CAPABILITY" && c != "LOGOUT" {
			t.Errorf("client sent %s to a server without STARTTLS", c)
		}
	}
}

// TestEndlessGreeting: a greeting line that never ends is an error, not a
// buffer.
func TestEndlessGreeting(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		c.Write([]byte("* OK "))
		buf := bytes.Repeat([]byte("x"), 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				return
			}
		}
	})
	cfg := Config{Addr: addr, TLS: TLSNone, User: "u", Password: "p", Timeout: time.Second}
	if _, err := Dial(context.Background(), cfg); err == nil {
		t.Error("Dial: no error")
	}
	if _, err := DialRaw(context.Background(), cfg); !errors.Is(err, ErrLineTooLong) {
		t.Errorf("DialRaw: %v", err)
	}
}

func TestDecodeMailbox(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"INBOX", "INBOX", true},
		{"Gr&APYA3w-e", "Größe", true},
		{"&-", "&", true},
		{"a&-b", "a&b", true},
		{"&ZeVnLIqe-", "日本語", true},
		{"Bad\x00Nul", "", false},
		{"Bad&Jjo", "", false},   // unterminated
		{"&AGEA-", "", false},    // 'a' encoded
		{"&2D0-", "", false},     // a lone surrogate
		{"&A-", "", false},       // bad base64
		{"tab\there", "", false}, // control
		{"Größe", "", false},     // raw 8-bit
	} {
		got, err := DecodeMailbox(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("DecodeMailbox(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !errors.Is(err, ErrBadMailboxName) {
			t.Errorf("DecodeMailbox(%q): %v does not wrap ErrBadMailboxName", tt.in, err)
		}
	}
}

// FuzzDecodeMailbox: decoding never panics, and every name Mailbox encodes
// decodes back.
func FuzzDecodeMailbox(f *testing.F) {
	for _, s := range []string{"INBOX", "Größe", "a&b", "日本語/x", "\U0001F600", "&Jjo", "Bad\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		DecodeMailbox(s)
		if !utfClean(s) {
			return
		}
		enc := Mailbox(s)
		enc = strings.NewReplacer(`\\`, `\`, `\"`, `"`).Replace(enc[1 : len(enc)-1])
		got, err := DecodeMailbox(enc)
		if err != nil || got != s {
			t.Fatalf("round trip of %q: %q -> %q, %v", s, enc, got, err)
		}
	})
}

// utfClean: valid UTF-8 without controls or U+FFFD (what a folder name
// can be).
func utfClean(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || r == 0xfffd || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return strings.ToValidUTF8(s, "\ufffd") == s
}

// TestListRawNames: the LIST fallback returns usable names decoded and
// unusable ones with their error, as the server sent them.
func TestListRawNames(t *testing.T) {
	addr := scripted(t, func(c net.Conn, r *bufio.Reader) {
		fmt.Fprintf(c, "* OK ready\r\n")
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return
			}
			f := strings.Fields(l)
			switch strings.ToUpper(f[1]) {
			case "LIST":
				fmt.Fprintf(c, "* LIST (\\HasNoChildren) \"/\" INBOX\r\n")
				fmt.Fprintf(c, "* LIST (\\HasNoChildren) \"/\" \"Gr&APYA3w-e\"\r\n")
				fmt.Fprintf(c, "* LIST () \"/\" {7}\r\nBad\x00Nul\r\n")
				fmt.Fprintf(c, "* LIST () \"/\" \"Bad&Jjo\"\r\n")
				fmt.Fprintf(c, "* LIST (\\Noselect) NIL \"q\\\"uote\"\r\n")
				fmt.Fprintf(c, "%s OK done\r\n", f[0])
			default:
				fmt.Fprintf(c, "%s OK done\r\n", f[0])
			}
		}
	})
	got, err := ListRaw(context.Background(), Config{Addr: addr, TLS: TLSNone, User: "u", Password: "p", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var desc []string
	for _, e := range got {
		desc = append(desc, fmt.Sprintf("%q %q %q %v %v", e.Mailbox, e.Sent, e.Delim, e.Attrs, errors.Is(e.Err, ErrBadMailboxName)))
	}
	want := []string{
		`"INBOX" "INBOX" '/' [\HasNoChildren] false`,
		`"Größe" "Gr&APYA3w-e" '/' [\HasNoChildren] false`,
		`"" "Bad\x00Nul" '/' [] true`,
		`"" "Bad&Jjo" '/' [] true`,
		`"q\"uote" "q\"uote" '\x00' [\Noselect] false`,
	}
	if strings.Join(desc, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(desc, "\n"), strings.Join(want, "\n"))
	}
}

// TestIdleSurvives: a connection with no command outstanding is never
// ended for being quiet, however long it idles. The test idles for
// four timeouts (real time is what is tested: deadlines run on the
// kernel's clock).
func TestIdleSurvives(t *testing.T) {
	mem := memimap.Start(t, "u", "p")
	cfg := Config{Addr: mem.Addr, TLS: TLSNone, User: "u", Password: "p", Timeout: 100 * time.Millisecond}
	c, err := Dial(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := DialRaw(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * cfg.Timeout)
	if err := c.Noop().Wait(); err != nil {
		t.Fatalf("NOOP after idling: %v", Explain(c, err))
	}
	if _, err := r.Cmd("NOOP"); err != nil {
		t.Fatalf("raw NOOP after idling: %v", err)
	}
}
