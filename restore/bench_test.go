package restore_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
	"github.com/mailkeep/mailkeep/internal/imaptest"
	"github.com/mailkeep/mailkeep/internal/latency"
	"github.com/mailkeep/mailkeep/restore"
)

// benchSource generates n messages of realistic sizes (most a few KB, some
// tens or hundreds of KB, one in a hundred around 1 MB) over a few folders.
func benchSource(n int) (*memSource, int64) {
	rng := rand.New(rand.NewPCG(1, 2))
	folders := []string{"INBOX", "Sent", "Archive/2024", "Lists/golang-nuts", "Lists/dovecot"}
	src := newSource()
	for _, f := range folders {
		src.folder(f, '/', "")
	}
	line := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2)[:76] + "\r\n"
	var total int64
	date := time.Date(2016, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		var size int
		switch p := rng.IntN(100); {
		case p < 70:
			size = 2_000 + rng.IntN(8_000)
		case p < 90:
			size = 10_000 + rng.IntN(50_000)
		case p < 99:
			size = 60_000 + rng.IntN(240_000)
		default:
			size = 500_000 + rng.IntN(1_500_000)
		}
		var sb strings.Builder
		fmt.Fprintf(&sb, "From: Sender %d <s%d@example.org>\r\nTo: alice@example.org\r\nSubject: message %d\r\nMessage-ID: <%d.bench@example.org>\r\nDate: %s\r\n\r\n", i%97, i%97, i, i, date.Format(time.RFC1123Z))
		for sb.Len() < size {
			sb.WriteString(line)
		}
		flags := []string{`\Seen`}
		if i%10 == 0 {
			flags = append(flags, `\Flagged`, "$Label1")
		}
		body := []byte(sb.String())
		src.add(folders[rng.IntN(len(folders))], body, flags, date.Add(time.Duration(i)*time.Hour))
		total += int64(len(body))
	}
	return src, total
}

// BenchmarkRestoreDovecot restores about 2,000 generated messages (about
// 80 MB in 5 folders) into a private Dovecot, with APPENDs pipelined over
// LITERAL+ and through go-imap alone; the wan cases put a 10 ms round
// trip between them (300 messages).
func BenchmarkRestoreDovecot(b *testing.B) {
	dv := dovecottest.Start(b, nil)
	dv.AddUser(b, "bench", pass)
	full, fullBytes := benchSource(2000)
	small, smallBytes := benchSource(300)
	cases := []struct {
		name  string
		src   *memSource
		bytes int64
		raw   bool
		rtt   time.Duration
	}{
		{"pipelined", full, fullBytes, true, 0},
		{"goimap", full, fullBytes, false, 0},
		{"wan10ms/pipelined", small, smallBytes, true, 10 * time.Millisecond},
		{"wan10ms/goimap", small, smallBytes, false, 10 * time.Millisecond},
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			addr := dv.IMAPAddr
			if bc.rtt > 0 {
				addr = latency.Proxy(b, dv.IMAPAddr, bc.rtt)
			}
			tg := target{addr, "bench", bc.raw}
			b.SetBytes(bc.bytes)
			var elapsed time.Duration
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				emptyAccount(b, dv.IMAPAddr, "bench")
				b.StartTimer()
				start := time.Now()
				st, err := tg.run(context.Background(), bc.src, newProgress(), restore.Options{})
				elapsed += time.Since(start)
				if err != nil || len(st.Failures) > 0 || st.Appended != bc.src.total() {
					b.Fatalf("%+v %v", st, err)
				}
			}
			b.ReportMetric(float64(bc.src.total()*b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// emptyAccount deletes every folder but INBOX and every message of INBOX.
func emptyAccount(b *testing.B, addr, user string) {
	c := imaptest.Dial(b, addr, user, pass)
	defer c.Close()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		b.Fatal(err)
	}
	// Children before parents.
	sort.Slice(list, func(i, j int) bool { return len(list[i].Mailbox) > len(list[j].Mailbox) })
	for _, l := range list {
		if name := l.Mailbox; !strings.EqualFold(name, "INBOX") {
			if err := c.Delete(name).Wait(); err != nil && !strings.Contains(err.Error(), "NONEXISTENT") {
				b.Fatalf("DELETE %q: %v", name, err)
			}
		}
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		b.Fatal(err)
	}
	var all imap.UIDSet
	all.AddRange(1, 0)
	if err := c.Store(all, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		b.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		b.Fatal(err)
	}
}
