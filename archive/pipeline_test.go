package archive

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// failAfter reads from r and fails after n bytes, as a connection that dies
// in the middle of a message.
type failAfter struct {
	r io.Reader
	n int
}

var errDied = errors.New("connection died")

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, errDied
	}
	if len(p) > f.n {
		p = p[:f.n]
	}
	k, err := f.r.Read(p)
	f.n -= k
	return k, err
}

// TestPipelineMessages stores, through the queue between Add and the
// worker, small messages, messages several times the queue's bound and
// messages with "From " lines, in every mbox format; every message reads
// back byte for byte with the SHA-256 the catalog holds. A message whose
// reader fails midway drops the pending messages and leaves the archive as
// the last commit left it, and the writer goes on.
func TestPipelineMessages(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	body := func(i, size int) []byte {
		var b bytes.Buffer
		fmt.Fprintf(&b, "From: a%d@example.com\r\nSubject: m %d\r\nMessage-ID: <%d@x>\r\n\r\n", i, i, i)
		for b.Len() < size {
			if rng.IntN(20) == 0 {
				b.WriteString("From the start of a line\r\n>From quoted\r\n")
			}
			fmt.Fprintf(&b, "%x\r\n", rng.Uint64())
		}
		return b.Bytes()
	}
	sizes := []int{100, 5000, 3 * queueChunks * chunkSize, 40, chunkSize, chunkSize + 1, 2*queueChunks*chunkSize + 17, 300}
	for _, format := range []Format{MboxZstd, MboxGzip, Mbox} {
		t.Run(string(format), func(t *testing.T) {
			dir := t.TempDir()
			a, err := Open(dir, Options{Format: format})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			run, _ := a.Cat.BeginRun("backup", "test", time.Now())
			f, err := a.Folder("INBOX", '/', "")
			if err != nil {
				t.Fatal(err)
			}
			w, err := a.NewWriter(f, run)
			if err != nil {
				t.Fatal(err)
			}
			want := map[uint32][]byte{}
			for i, size := range sizes {
				b := body(i, size)
				uid := uint32(i + 1)
				if _, err := w.Add(&Incoming{UIDValidity: 1, UID: uid, InternalDate: time.Now()}, bytes.NewReader(b)); err != nil {
					t.Fatal(err)
				}
				want[uid] = b
				if i == 3 {
					if err := w.Commit(); err != nil {
						t.Fatal(err)
					}
				}
			}
			// Everything since the commit after message 4 is pending; a
			// message that breaks off drops it all.
			big := body(99, 4*queueChunks*chunkSize)
			_, err = w.Add(&Incoming{UIDValidity: 1, UID: 99, InternalDate: time.Now()}, &failAfter{r: bytes.NewReader(big), n: len(big) / 2})
			if !errors.Is(err, errDied) || !strings.Contains(err.Error(), "uid 99") {
				t.Fatalf("broken message: %v", err)
			}
			for uid := uint32(5); uid <= uint32(len(sizes)); uid++ {
				delete(want, uid)
			}
			// The writer goes on after the error.
			for i, size := range []int{2 * queueChunks * chunkSize, 10} {
				b := body(100+i, size)
				uid := uint32(100 + i)
				if _, err := w.Add(&Incoming{UIDValidity: 1, UID: uid, InternalDate: time.Now()}, bytes.NewReader(b)); err != nil {
					t.Fatal(err)
				}
				want[uid] = b
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			all, err := a.Cat.All(f.ID)
			if err != nil {
				t.Fatal(err)
			}
			if len(all) != len(want) {
				t.Fatalf("catalog holds %d messages, want %d", len(all), len(want))
			}
			for _, m := range all {
				b, ok := want[m.UID]
				if !ok {
					t.Fatalf("uid %d in the catalog", m.UID)
				}
				sum := sha256.Sum256(b)
				if m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(b)) {
					t.Errorf("uid %d: sha %s size %d, want %x %d", m.UID, m.SHA256, m.Size, sum, len(b))
				}
				r, err := a.Open(m)
				if err != nil {
					t.Fatal(err)
				}
				got, err := io.ReadAll(r)
				r.Close()
				if err != nil || !bytes.Equal(got, b) {
					t.Errorf("uid %d reads back %d bytes (%v), want %d", m.UID, len(got), err, len(b))
				}
			}
		})
	}
}
