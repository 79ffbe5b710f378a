package mboxfile

import (
	"encoding/base64"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
)

// A small deterministic mail corpus for tests and benchmarks: plain text,
// HTML alternatives and base64 attachments (half of them random bytes),
// sizes spread like a real mailbox.

var words = strings.Fields(`the of and to in is that for it as was with be by on not he this are or his from at which but have an they
you were her she there been one all we their has would when if so no will can more what about up out time
backup server message folder archive restore mailbox invoice meeting project report quarterly budget review
schedule customer release deadline contract draft update follow attached please thanks regards tomorrow
monday friday office team account payment shipping order delivery ticket support question answer notes
café naïve Größe 日本語 Привет`)

func para(r *rand.Rand, n int) string {
	var b strings.Builder
	col := 0
	for range n {
		w := words[r.IntN(len(words))]
		if col+len(w) > 72 {
			b.WriteString("\r\n")
			col = 0
		} else if col > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	return b.String()
}

func text(r *rand.Rand, size int) string {
	var b strings.Builder
	for b.Len() < size {
		b.WriteString(para(r, 20+r.IntN(100)))
		b.WriteString("\r\n\r\n")
		if r.IntN(20) == 0 {
			b.WriteString("From the desk of the director\r\n")
		}
		if r.IntN(10) == 0 {
			b.WriteString("> " + strings.ReplaceAll(para(r, 30), "\r\n", "\r\n> ") + "\r\n")
		}
	}
	return b.String()
}

func lognorm(r *rand.Rand, mu, sigma float64) int { return int(math.Exp(mu + sigma*r.NormFloat64())) }

// mail returns message i of a corpus: ~10 KB of text on average, one in
// twenty with an attachment of 100 KB to 1 MB.
func mail(r *rand.Rand, i int) []byte {
	from := fmt.Sprintf("user%d@example.org", r.IntN(300))
	hdr := fmt.Sprintf("Received: from mx%d.example.org by mail.example.com with ESMTPS id %x\r\n\tfor <alice@example.com>; Mon, 2 Mar 2026 10:%02d:00 +0000\r\n"+
		"From: %s\r\nTo: alice@example.com\r\nSubject: %s\r\nDate: Mon, 2 Mar 2026 10:%02d:00 +0000\r\nMessage-ID: <%d.%x@example.org>\r\nMIME-Version: 1.0\r\n",
		r.IntN(9), r.Uint64(), i%60, from, para(r, 6), i%60, i, r.Uint64())
	switch k := r.IntN(20); {
	case k < 15:
		return []byte(hdr + "Content-Type: text/plain; charset=utf-8\r\n\r\n" + text(r, lognorm(r, 8.3, 0.8)))
	case k < 19:
		t := text(r, lognorm(r, 8.5, 0.7))
		return []byte(hdr + "Content-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n" + t +
			"--b\r\nContent-Type: text/html\r\n\r\n<html><body><p>" + strings.ReplaceAll(t, "\r\n\r\n", "</p>\r\n<p>") + "</p></body></html>\r\n--b--\r\n")
	default:
		raw := make([]byte, min(1<<20, max(100<<10, lognorm(r, 12, 0.8))))
		if r.IntN(2) == 0 {
			for j := range raw {
				raw[j] = byte(r.Uint32())
			}
		} else {
			copy(raw, text(r, len(raw)))
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		var b strings.Builder
		b.WriteString(hdr + "Content-Type: multipart/mixed; boundary=m\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\n" + text(r, 2000) +
			"--m\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
		for len(enc) > 76 {
			b.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		b.WriteString(enc + "\r\n--m--\r\n")
		return []byte(b.String())
	}
}

// corpus returns messages totalling at least size bytes.
func corpus(seed uint64, size int) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	var out [][]byte
	for n, i := 0, 0; n < size; i++ {
		m := mail(r, i)
		out = append(out, m)
		n += len(m)
	}
	return out
}
