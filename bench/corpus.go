// Package bench measures mailkeep against a private Dovecot filled with a
// realistic, deterministic corpus, next to the raw IMAP fetch floor and the
// peer tools (mbsync, mpop) when they are installed. Run it with
// `make bench`; see README.md in this directory.
package bench

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which but have an they
you were her she there been one all we their has would when if so no will can more what about up out time
backup server message folder archive restore mailbox invoice meeting project report quarterly budget review
schedule customer release deadline contract draft update follow attached please thanks regards tomorrow
monday friday office team account payment shipping order delivery ticket support question answer notes`)

var utf8Words = []string{"café", "naïve", "Größe", "日本語", "العربية", "emoji 🎉", "Ωμέγα", "Привет"}

// Folders is the corpus's Maildir++ folder list ("" is INBOX).
var Folders = []string{"", ".Sent", ".Drafts", ".Trash", ".Archive", ".Archive.2019", ".Archive.2020", ".Lists", ".Lists.golang", ".Work", ".Work.Projects", ".Receipts"}

func para(r *rand.Rand, n int) string {
	w := make([]string, n)
	for i := range w {
		w[i] = words[r.IntN(len(words))]
	}
	if r.Float64() < 0.1 {
		w[r.IntN(n)] = utf8Words[r.IntN(len(utf8Words))]
	}
	var out []string
	line := ""
	for _, x := range w {
		if len(line)+len(x) > 72 {
			out = append(out, line)
			line = x
		} else {
			line = strings.TrimSpace(line + " " + x)
		}
	}
	return strings.Join(append(out, line), "\n")
}

func lognorm(r *rand.Rand, mu, sigma float64) float64 { return math.Exp(mu + sigma*r.NormFloat64()) }

func bodyText(r *rand.Rand, size int) string {
	var parts []string
	total := 0
	for total < size {
		p := para(r, 20+r.IntN(100))
		parts = append(parts, p)
		total += len(p) + 2
		switch x := r.Float64(); {
		case x < 0.02:
			parts = append(parts, "From the desk of the director: "+para(r, 10))
		case x < 0.03:
			parts = append(parts, ">From an earlier quoted line")
		case x < 0.035:
			parts = append(parts, "From "+para(r, 5))
		case x < 0.04:
			parts = append(parts, strings.Repeat("x", 1000+r.IntN(4000)))
		}
	}
	return strings.Join(parts, "\n\n") + "\n"
}

func message(r *rand.Rand, i int, date int64) []byte {
	from := fmt.Sprintf("user%d@example.%s", 1+r.IntN(300), []string{"com", "org", "net"}[r.IntN(3)])
	hdr := []string{"Return-Path: <" + from + ">", "From: " + from, "To: alice@example.com",
		"Subject: " + strings.ReplaceAll(para(r, 3+r.IntN(7)), "\n", " "),
		"Date: " + time.Unix(date, 0).UTC().Format("Mon, 02 Jan 2006 15:04:05 +0000"),
		fmt.Sprintf("Message-ID: <%d.%x@example.com>", i, r.Uint64()>>16), "MIME-Version: 1.0"}
	var body string
	switch k := r.Float64(); {
	case k < 0.80:
		hdr = append(hdr, "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit")
		body = bodyText(r, int(lognorm(r, 8.3, 0.8)))
	case k < 0.95:
		b := fmt.Sprintf("b%d", r.Uint64())
		t := bodyText(r, int(lognorm(r, 8.5, 0.7)))
		html := "<html><body><p>" + strings.ReplaceAll(t, "\n\n", "</p><p>") + "</p></body></html>\n"
		hdr = append(hdr, `Content-Type: multipart/alternative; boundary="`+b+`"`)
		body = "--" + b + "\nContent-Type: text/plain; charset=utf-8\n\n" + t + "\n--" + b + "\nContent-Type: text/html; charset=utf-8\n\n" + html + "\n--" + b + "--\n"
	default:
		b := fmt.Sprintf("m%d", r.Uint64())
		n := int(min(3_000_000, max(100_000, lognorm(r, 12.8, 0.9))))
		raw := make([]byte, n)
		if r.Float64() < 0.5 {
			for j := range raw {
				raw[j] = byte(r.Uint32())
			}
		} else {
			raw = []byte(bodyText(r, n))[:n]
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		var lines []string
		for len(enc) > 76 {
			lines = append(lines, enc[:76])
			enc = enc[76:]
		}
		lines = append(lines, enc)
		hdr = append(hdr, `Content-Type: multipart/mixed; boundary="`+b+`"`)
		body = "--" + b + "\nContent-Type: text/plain; charset=utf-8\n\n" + bodyText(r, 2000) + "\n--" + b +
			fmt.Sprintf("\nContent-Type: application/octet-stream; name=\"file%d.bin\"\nContent-Disposition: attachment; filename=\"file%d.bin\"\nContent-Transfer-Encoding: base64\n\n", i, i) +
			strings.Join(lines, "\n") + "\n--" + b + "--\n"
	}
	return []byte(strings.Join(hdr, "\n") + "\n\n" + body)
}

// Stats describe a generated corpus.
type Stats struct {
	Messages int
	Bytes    int64
	Inbox    int
}

// Generate writes count messages into a Dovecot Maildir++ tree at maildir:
// 12 folders, mixed sizes (text, HTML, attachments up to 3 MB), flags, ten
// years of internal dates (file mtimes), bodies with "From " lines. The
// same seed gives the same bytes.
func Generate(maildir string, count int, seed uint64) (Stats, error) {
	r := rand.New(rand.NewPCG(seed, seed^0x5eed))
	var st Stats
	for _, f := range Folders {
		for _, s := range []string{"cur", "new", "tmp"} {
			if err := os.MkdirAll(filepath.Join(maildir, f, s), 0o700); err != nil {
				return st, err
			}
		}
		if f != "" {
			os.WriteFile(filepath.Join(maildir, f, "maildirfolder"), nil, 0o600)
		}
	}
	weights := []int{40}
	for j := 1; j < len(Folders); j++ {
		weights = append(weights, max(1, 20-j+1))
	}
	sum := 0
	for _, w := range weights {
		sum += w
	}
	const now = 1_780_000_000
	for i := 0; i < count; i++ {
		x, fi := r.IntN(sum), 0
		for x >= weights[fi] {
			x -= weights[fi]
			fi++
		}
		date := int64(now - r.IntN(10*365*86400))
		data := message(r, i, date)
		flags := ""
		for _, fp := range []struct {
			l string
			p float64
		}{{"D", .01}, {"F", .05}, {"R", .2}, {"S", .85}, {"T", .01}} {
			if r.Float64() < fp.p {
				flags += fp.l
			}
		}
		p := filepath.Join(maildir, Folders[fi], "cur", fmt.Sprintf("%d.M%dP%d.bench,S=%d:2,%s", date, i, seed, len(data), flags))
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return st, err
		}
		t := time.Unix(date, 0)
		os.Chtimes(p, t, t)
		st.Messages++
		st.Bytes += int64(len(data))
		if fi == 0 {
			st.Inbox++
		}
	}
	return st, nil
}
