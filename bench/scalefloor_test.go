package bench

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// BenchmarkScaleFolderDovecot (only with MAILKEEP_BENCH_SCALE=1): what
// Dovecot itself takes for the commands an incremental backup of one
// large folder can send, each on a fresh connection (a new imap process,
// as a backup run has), at each size of MAILKEEP_BENCH_SCALE_SIZES
// (default 200000): LIST-STATUS (what mailkeep lists with), plain STATUS,
// EXAMINE alone, and EXAMINE after LIST-STATUS or after STATUS on the same
// connection; in a steady state, then after 100 new messages and after
// 1,000 flag changes (the cases of BenchmarkScaleFolder). Each figure is
// the median of MAILKEEP_BENCH_FLOOR_ROUNDS rounds (3) of wall seconds
// from command to tagged answer, and the slowest (Dovecot re-reads a
// changed Maildir once, in whichever session comes first after the change
// settles: the max), with the load average beside it. No
// mailkeep runs here: this is the floor a client cannot go below.
func BenchmarkScaleFolderDovecot(b *testing.B) {
	e := scaleOnConfig(b, "stock")
	rounds := 3
	if r := envInts("MAILKEEP_BENCH_FLOOR_ROUNDS", nil); len(r) == 1 && r[0] > 0 {
		rounds = r[0]
	}
	for si, n := range envInts("MAILKEEP_BENCH_SCALE_SIZES", []int{200000}) {
		u := fmt.Sprintf("scale%d", si)
		md := e.dv.Maildir(u)
		if err := fillMaildir(md, "cur", 0, n, "S"); err != nil {
			b.Fatal(err)
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		e.doveadm(b, "index", "-u", u, "INBOX")
		const listStatus = `LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))`
		const status = `STATUS INBOX (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ)`
		const examine = `EXAMINE INBOX (CONDSTORE)`
		probes := []struct {
			name string
			cmds []string
			at   int // the command timed
		}{
			{"LIST-STATUS", []string{listStatus}, 0},
			{"STATUS", []string{status}, 0},
			{"EXAMINE", []string{examine}, 0},
			{"EXAMINE after LIST-STATUS", []string{listStatus, examine}, 1},
			{"EXAMINE after STATUS", []string{status, examine}, 1},
		}
		measure := func(state string) {
			secs := make([][]float64, len(probes))
			for range rounds {
				for i, p := range probes {
					d, err := dovecotProbe(e.dv.IMAPAddr, u, p.cmds)
					if err != nil {
						b.Fatal(err)
					}
					secs[i] = append(secs[i], d[p.at])
				}
			}
			for i, p := range probes {
				slices.Sort(secs[i])
				fmt.Printf("dovecot %d msgs, %-18s %-26s %6.3f s (median of %d, max %.3f; load %s)\n", n, state, p.name, secs[i][len(secs[i])/2], rounds, secs[i][len(secs[i])-1], loadAvg())
			}
		}
		measure("steady")
		if err := fillMaildir(md, "new", n, 100, ""); err != nil {
			b.Fatal(err)
		}
		if err := chownForDovecot(md); err != nil {
			b.Fatal(err)
		}
		e.doveadm(b, "force-resync", "-u", u, "INBOX")
		measure("after +100 new")
		e.doveadm(b, "flags", "add", "-u", u, `\Flagged`, "mailbox", "INBOX", "uid", fmt.Sprintf("%d:%d", n/2, n/2+999))
		measure("after 1000 flags")
		os.RemoveAll(md)
	}
}

var tagged = regexp.MustCompile(`^[A-Z][0-9]* (OK|NO|BAD)`)

// dovecotProbe logs in on a fresh connection and sends cmds one after
// the other: the seconds each took to its tagged answer.
func dovecotProbe(addr, user string, cmds []string) ([]float64, error) {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := bufio.NewReaderSize(c, 1<<16)
	if _, err := r.ReadString('\n'); err != nil {
		return nil, err
	}
	send := func(tag, cmd string) (float64, error) {
		start := time.Now()
		if _, err := fmt.Fprintf(c, "%s %s\r\n", tag, cmd); err != nil {
			return 0, err
		}
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				return 0, err
			}
			if strings.HasPrefix(l, tag+" ") && tagged.MatchString(l) {
				if !strings.HasPrefix(l, tag+" OK") {
					return 0, fmt.Errorf("%s: %s", cmd, strings.TrimSpace(l))
				}
				return time.Since(start).Seconds(), nil
			}
		}
	}
	if _, err := send("L", fmt.Sprintf("LOGIN %s %s", user, benchPass)); err != nil {
		return nil, err
	}
	var out []float64
	for i, cmd := range cmds {
		d, err := send(fmt.Sprintf("T%d", i), cmd)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	send("Z", "LOGOUT")
	return out, nil
}

func loadAvg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
