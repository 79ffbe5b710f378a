package restore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/emersion/go-imap/v2"
)

func TestParseMessageID(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Message-ID: <a@b>\r\n\r\n", "a@b"},
		{"Message-Id:<a@b>\r\n\r\n", "a@b"},
		{"MESSAGE-ID: \r\n <folded@b>\r\n\r\n", "folded@b"},
		{"Message-ID: <a@b>\r\nMessage-ID: <second@b>\r\n\r\n", "a@b"},
		{"Message-ID: a@b\n\n", "a@b"},
		{"\r\n", ""},
		{"", ""},
	} {
		if got := parseMessageID([]byte(tc.in)); got != tc.want {
			t.Errorf("parseMessageID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestValidFlag(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{`\Seen`, true}, {"$Label1", true}, {"Custom_kw", true}, {`\Important`, true}, {"a.b-c+d", true},
		{"", false}, {`\`, false}, {"two words", false}, {"(x", false}, {"x]", false}, {`a\b`, false},
		{`\\x`, false}, {"50%", false}, {"a*", false}, {`"q"`, false}, {"größe", false}, {"tab\t", false},
	} {
		if got := validFlag(tc.in); got != tc.want {
			t.Errorf("validFlag(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestFlags(t *testing.T) {
	for _, tc := range []struct {
		name     string
		perm     []imap.Flag
		in, want []string
		dropped  int
	}{
		{"wildcard", []imap.Flag{`\Seen`, imap.FlagWildcard}, []string{`\Seen`, `\Recent`, "$Kw", "kw2", `\Important`, "bad kw"}, []string{`\Seen`, "$Kw", "kw2"}, 2},
		{"system only", []imap.Flag{`\Seen`, `\Deleted`}, []string{`\Answered`, `\Deleted`, "$Kw", `\recent`}, []string{`\Answered`, `\Deleted`}, 1},
		{"listed keyword", []imap.Flag{`\Seen`, "$Junk", `\Important`}, []string{"$junk", "$Phishing", `\Important`}, []string{"$junk", `\Important`}, 1},
		{"duplicates", []imap.Flag{imap.FlagWildcard}, []string{`\Seen`, `\SEEN`, "kw", "KW"}, []string{`\Seen`, "kw"}, 0},
		{"none permanent", nil, []string{`\Flagged`, "$Kw"}, []string{`\Flagged`}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{}
			fr := &folderRun{r: r, allowKw: map[string]bool{}, dropped: map[string]bool{}}
			for _, p := range tc.perm {
				if p == imap.FlagWildcard {
					fr.allowAll = true
				}
				fr.allowKw[strings.ToLower(string(p))] = true
			}
			var got []string
			for _, f := range fr.flags(tc.in) {
				got = append(got, string(f))
			}
			if !slices.Equal(got, tc.want) || r.stats.KeywordsDropped != tc.dropped {
				t.Errorf("flags %v -> %v, %d dropped; want %v, %d", tc.in, got, r.stats.KeywordsDropped, tc.want, tc.dropped)
			}
		})
	}
}

func TestDestName(t *testing.T) {
	special := map[string]string{`\sent`: "Sent Messages", `\trash`: "INBOX.Deleted"}
	for _, tc := range []struct {
		name   string
		delim  rune
		ns     string
		opt    Options
		folder Folder
		want   string // "" = ErrUnrepresentable
	}{
		{"plain", '/', "", Options{}, Folder{Name: "Work/Projects", Delim: '/', SpecialUse: ""}, "Work/Projects"},
		{"ns dot", '.', "INBOX.", Options{}, Folder{Name: "Work/Projects", Delim: '/', SpecialUse: ""}, "INBOX.Work.Projects"},
		{"inbox", '.', "INBOX.", Options{}, Folder{Name: "Inbox", Delim: '/', SpecialUse: ""}, "INBOX"},
		{"inbox child", '.', "INBOX.", Options{}, Folder{Name: "inbox/x", Delim: '/', SpecialUse: ""}, "INBOX.x"},
		{"source dot", '/', "", Options{}, Folder{Name: "Work.Projects", Delim: '.', SpecialUse: ""}, "Work/Projects"},
		{"delim in name", '.', "INBOX.", Options{}, Folder{Name: "v1.2", Delim: '/', SpecialUse: ""}, ""},
		{"slash in name", '/', "", Options{}, Folder{Name: "a/b.c", Delim: '.', SpecialUse: ""}, ""},
		{"empty level", '/', "", Options{}, Folder{Name: "a//b", Delim: '/', SpecialUse: ""}, ""},
		{"flat server", 0, "", Options{}, Folder{Name: "a/b", Delim: '/', SpecialUse: ""}, ""},
		{"flat server top", 0, "", Options{}, Folder{Name: "a.b", Delim: '/', SpecialUse: ""}, "a.b"},
		{"prefix", '.', "INBOX.", Options{Prefix: "Restored/2026"}, Folder{Name: "INBOX", Delim: '/', SpecialUse: ""}, "INBOX.Restored.2026.INBOX"},
		{"prefix delim", '.', "", Options{Prefix: "Re.stored"}, Folder{Name: "INBOX", Delim: '/', SpecialUse: ""}, ""},
		{"well-known", '/', "", Options{}, Folder{Name: "Sent Items", Delim: '/', SpecialUse: ""}, "Sent Messages"},
		{"well-known case", '/', "", Options{}, Folder{Name: "SENT", Delim: '/', SpecialUse: ""}, "Sent Messages"},
		{"well-known nested", '/', "", Options{}, Folder{Name: "Work/Sent", Delim: '/', SpecialUse: ""}, "Work/Sent"},
		{"attr nested", '/', "", Options{}, Folder{Name: "[Gmail]/Bin", Delim: '/', SpecialUse: `\Trash`}, "INBOX.Deleted"},
		{"attr wins", '/', "", Options{}, Folder{Name: "Sent", Delim: '/', SpecialUse: `\Trash`}, "INBOX.Deleted"},
		{"no such special", '/', "", Options{}, Folder{Name: "Drafts", Delim: '/', SpecialUse: ""}, "Drafts"},
		{"no special use", '/', "", Options{NoSpecialUse: true}, Folder{Name: "Sent Items", Delim: '/', SpecialUse: ""}, "Sent Items"},
		{"prefix no special", '/', "", Options{Prefix: "Old"}, Folder{Name: "Sent Items", Delim: '/', SpecialUse: `\Sent`}, "Old/Sent Items"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &run{delim: tc.delim, nsPrefix: tc.ns, opt: tc.opt, special: special}
			got, err := r.destName(tc.folder)
			if tc.want == "" {
				if !errors.Is(err, ErrUnrepresentable) {
					t.Fatalf("destName(%+v) = %q, %v; want ErrUnrepresentable", tc.folder, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("destName(%+v) = %q, %v; want %q", tc.folder, got, err, tc.want)
			}
		})
	}
}

func TestLFCounter(t *testing.T) {
	for _, in := range []string{"", "a\r\nb\r\n", "a\nb\n", "\n", "\r\n", "\r\r\n\n", "x\ry\nz\r", "mixed\r\nline\nend"} {
		want := int64(len(toCRLF([]byte(in))) - len(in))
		// Every split into two writes, for CR and LF in different writes.
		for i := 0; i <= len(in); i++ {
			c := &lfCounter{}
			c.Write([]byte(in[:i]))
			c.Write([]byte(in[i:]))
			if c.bare != want {
				t.Errorf("%q split at %d: %d bare LFs, want %d", in, i, c.bare, want)
			}
		}
	}
	if got := string(toCRLF([]byte("a\nb\r\n\nc"))); got != "a\r\nb\r\n\r\nc" {
		t.Errorf("toCRLF: %q", got)
	}
}

func msgOf(b []byte, second []byte) Message {
	sum := sha256.Sum256(b)
	n := 0
	return Message{Key: "k", Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:]), Open: func() (io.ReadCloser, error) {
		n++
		if n > 1 && second != nil {
			return io.NopCloser(bytes.NewReader(second)), nil
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	}}
}

func TestLoad(t *testing.T) {
	good := []byte("Subject: x\r\n\r\nbody\r\n")
	bad := slices.Clone(good)
	bad[3] = 'X'
	for _, tc := range []struct {
		name string
		m    Message
		ok   bool
	}{
		{"good", msgOf(good, nil), true},
		{"bit flip", func() Message { m := msgOf(good, nil); m.Open = msgOf(bad, nil).Open; return m }(), false},
		{"longer", func() Message { m := msgOf(good, nil); m.Size--; return m }(), false},
		{"shorter", func() Message { m := msgOf(good, nil); m.Size++; return m }(), false},
		{"open fails", Message{Key: "k", Size: 1, Open: func() (io.ReadCloser, error) { return nil, errors.New("EIO") }}, false},
		{"read fails", Message{Key: "k", Size: 10, Open: func() (io.ReadCloser, error) {
			return io.NopCloser(iotest.TimeoutReader(bytes.NewReader(good))), nil
		}}, false},
		{"no Open", Message{Key: "k", Size: 1}, false},
		{"no checksum", func() Message { m := msgOf(good, nil); m.SHA256 = ""; return m }(), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := load(tc.m)
			if tc.ok {
				if err != nil || !bytes.Equal(b.buf, good) {
					t.Fatalf("load: %v", err)
				}
				return
			}
			var de *damageError
			if !errors.Is(err, ErrDamaged) || !errors.As(err, &de) {
				t.Fatalf("load: %v; want a damage error", err)
			}
		})
	}
}

// TestWriteToHoldsBackLastByte: a large message that changes between its
// checking read and its sending read leaves the literal one byte short.
func TestWriteToHoldsBackLastByte(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789abcdef\r\n"), smallMessage/18+100)
	for _, tc := range []struct {
		name   string
		second []byte
		ok     bool
	}{
		{"same", nil, true},
		{"last byte", append(slices.Clone(big[:len(big)-1]), 'X'), false},
		{"first byte", append([]byte("X"), big[1:]...), false},
		{"shorter", big[:len(big)-1], false},
		{"longer", append(slices.Clone(big), 'X'), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := msgOf(big, tc.second)
			b, err := load(m)
			if err != nil {
				t.Fatal(err)
			}
			if b.inMemory() {
				t.Fatal("a large message is kept in memory")
			}
			var w bytes.Buffer
			err = b.writeTo(&w)
			if tc.ok {
				if err != nil || !bytes.Equal(w.Bytes(), big) {
					t.Fatalf("writeTo: %v, %d bytes", err, w.Len())
				}
				return
			}
			var de *damageError
			if !errors.As(err, &de) || int64(w.Len()) >= m.Size {
				t.Fatalf("writeTo: %v after %d of %d bytes; want a damage error before the last byte", err, w.Len(), m.Size)
			}
		})
	}
}

// failWriter fails after n bytes.
type failWriter struct{ n int }

func (w *failWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		k := w.n
		w.n = 0
		return k, errors.New("connection reset")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestWriteToConnectionError: a failing connection is not reported as
// damage.
func TestWriteToConnectionError(t *testing.T) {
	big := bytes.Repeat([]byte("x"), smallMessage+10)
	b, err := load(msgOf(big, nil))
	if err != nil {
		t.Fatal(err)
	}
	err = b.writeTo(&failWriter{n: 1000})
	var de *damageError
	if err == nil || errors.As(err, &de) {
		t.Fatalf("writeTo: %v; want the writer's error", err)
	}
}
