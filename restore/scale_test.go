package restore_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/restore"
)

// smallSource is n small messages (about 1 KB) in one folder, INBOX.
func smallSource(n int) *memSource {
	src := newSource()
	src.folder("INBOX", '/', "")
	date := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	line := strings.Repeat("x", 70) + "\r\n"
	for i := 0; i < n; i++ {
		body := fmt.Sprintf("From: a@example.org\r\nTo: b@example.org\r\nSubject: m %d\r\nMessage-ID: <%d.scale@example.org>\r\n\r\n%s", i, i, strings.Repeat(line, 12))
		flags := []string{`\Seen`}
		if i%7 == 0 {
			flags = append(flags, "$Label1")
		}
		src.add("INBOX", []byte(body), flags, date.Add(time.Duration(i)*time.Minute))
	}
	return src
}

// TestRestoreScale restores MAILKEEP_RESTORE_SCALE (comma-separated
// counts, e.g. 5000,20000) small messages into one empty Dovecot folder
// each, in MULTIAPPEND batches and then one APPEND per message
// (Options.NoMultiAppend), and prints the times and their growth. Skipped
// without the variable: it is a measurement, not a check.
func TestRestoreScale(t *testing.T) {
	spec := os.Getenv("MAILKEEP_RESTORE_SCALE")
	if spec == "" {
		t.Skip("set MAILKEEP_RESTORE_SCALE=5000,50000 to measure")
	}
	dv := dovecottest.Start(t, nil)
	u := 0
	for _, single := range []bool{false, true} {
		var first time.Duration
		var firstN int
		for i, s := range strings.Split(spec, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				t.Fatal(err)
			}
			u++
			user := fmt.Sprintf("scale%d", u)
			dv.AddUser(t, user, pass)
			src := smallSource(n)
			tg := target{dv.IMAPAddr, user, true}
			start := time.Now()
			st, err := tg.run(context.Background(), src, newProgress(), restore.Options{NoMultiAppend: single})
			d := time.Since(start)
			noErr(t, "restore", st, err)
			if st.Appended != n {
				t.Fatalf("appended %d of %d", st.Appended, n)
			}
			if i == 0 {
				first, firstN = d, n
			}
			mode := "MULTIAPPEND"
			if single {
				mode = "one APPEND per message"
			}
			t.Logf("%s: %d messages into one folder: %.2f s (%.0f msgs/s); %.1fx the time of %d for %.1fx the messages", mode, n, d.Seconds(), float64(n)/d.Seconds(), d.Seconds()/first.Seconds(), firstN, float64(n)/float64(firstN))
		}
	}
}

// TestAppendScaleCause appends MAILKEEP_APPEND_SCALE (comma-separated
// counts) small messages into one empty Dovecot folder over a bare raw
// connection, without restore's engine, three ways: single pipelined
// APPENDs with no other session, the same while a second session has the
// folder selected, and MULTIAPPEND batches of 1000. It prints the times:
// the experiment behind multiappend.go's note on Dovecot's cost.
func TestAppendScaleCause(t *testing.T) {
	spec := os.Getenv("MAILKEEP_APPEND_SCALE")
	if spec == "" {
		t.Skip("set MAILKEEP_APPEND_SCALE=2000,8000 to measure")
	}
	dv := dovecottest.Start(t, nil)
	msg := []byte("From: a@example.org\r\nSubject: x\r\n\r\n" + strings.Repeat(strings.Repeat("x", 70)+"\r\n", 12))
	write := func(w io.Writer) error { _, err := w.Write(msg); return err }
	ctx := context.Background()
	u := 0
	for _, s := range strings.Split(spec, ",") {
		n, _ := strconv.Atoi(s)
		for _, mode := range []string{"single", "single+selected", "multi"} {
			u++
			user := fmt.Sprintf("cause%d", u)
			dv.AddUser(t, user, pass)
			cfg := imapconn.Config{Addr: dv.IMAPAddr, TLS: imapconn.TLSNone, User: user, Password: pass}
			raw, err := imapconn.DialRaw(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if mode == "single+selected" {
				c := imaptest.Dial(t, dv.IMAPAddr, user, pass)
				if _, err := c.Select("INBOX", nil).Wait(); err != nil {
					t.Fatal(err)
				}
				defer c.Close()
			}
			start := time.Now()
			var tags []string
			for i := 0; i < n; {
				k := 1
				if mode == "multi" {
					k = min(1000, n-i)
				}
				tag, err := raw.StartAppend("INBOX")
				if err != nil {
					t.Fatal(err)
				}
				for j := 0; j < k; j++ {
					if err := raw.AppendMessage([]string{`\Seen`}, time.Time{}, int64(len(msg)), write); err != nil {
						t.Fatal(err)
					}
				}
				if err := raw.EndAppend(); err != nil {
					t.Fatal(err)
				}
				tags = append(tags, tag)
				i += k
				for len(tags) > 32 {
					if _, _, err := raw.ReadTagged(tags[0]); err != nil {
						t.Fatal(err)
					}
					tags = tags[1:]
				}
			}
			for _, tag := range tags {
				if _, _, err := raw.ReadTagged(tag); err != nil {
					t.Fatal(err)
				}
			}
			raw.Logout()
			t.Logf("%s: %d messages: %.2f s", mode, n, time.Since(start).Seconds())
		}
	}
}
