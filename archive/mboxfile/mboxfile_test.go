package mboxfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

func readFrom(t *testing.T, path string, c Codec, p Pos, n int) []byte {
	t.Helper()
	r, err := OpenReader(path, c, p)
	if err != nil {
		t.Fatalf("OpenReader %+v: %v", p, err)
	}
	defer r.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d at %+v: %v", n, p, err)
	}
	return b
}

func msgs(rng *rand.Rand, n int) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		size := 10 + rng.IntN(3000)
		if i%7 == 0 {
			size = 5000 + rng.IntN(9000) // spans frames of 1 KiB
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = "abcdefgh \n"[rng.IntN(10)]
		}
		b = append(b, fmt.Sprintf("#%d\n", i)...)
		out = append(out, b)
	}
	return out
}

func TestAppendSessionsAndPositions(t *testing.T) {
	for _, c := range []Codec{CodecZstd, CodecGzip, CodecNone} {
		t.Run(string(c), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "f.mbox")
			rng := rand.New(rand.NewPCG(3, 4))
			var all []byte
			var pos []Pos
			var ms [][]byte
			committed := int64(0)
			for session := 0; session < 3; session++ {
				w, err := OpenAppend(path, committed, Options{Codec: c, FrameSize: 1024})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs(rng, 20) {
					pos = append(pos, w.Pos())
					ms = append(ms, m)
					if _, err := w.Write(m); err != nil {
						t.Fatal(err)
					}
					all = append(all, m...)
				}
				if committed, err = w.Sync(); err != nil {
					t.Fatal(err)
				}
				w.Close()
			}
			for i, p := range pos {
				if got := readFrom(t, path, c, p, len(ms[i])); !bytes.Equal(got, ms[i]) {
					t.Fatalf("message %d at %+v differs", i, p)
				}
			}
			r, _ := OpenReader(path, c, Pos{})
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, all) {
				t.Fatalf("whole stream: %v, %d of %d bytes", err, len(got), len(all))
			}
			tool := map[Codec][]string{CodecZstd: {"zstd", "-dc"}, CodecGzip: {"gzip", "-dc"}, CodecNone: {"cat"}}[c]
			if _, err := exec.LookPath(tool[0]); err != nil {
				if os.Getenv("CI") != "" {
					t.Fatalf("%s missing", tool[0])
				}
				t.Skipf("%s missing", tool[0])
			}
			out, err := exec.Command(tool[0], append(tool[1:], path)...).Output()
			if err != nil || !bytes.Equal(out, all) {
				t.Fatalf("%s of the appended file: %v, %d of %d bytes", tool[0], err, len(out), len(all))
			}
		})
	}
}

// TestTornTail simulates a crash: data written after the last Sync, torn
// at random points, is dropped by the next OpenAppend.
func TestTornTail(t *testing.T) {
	for _, c := range []Codec{CodecZstd, CodecGzip, CodecNone} {
		rng := rand.New(rand.NewPCG(5, 6))
		for trial := 0; trial < 10; trial++ {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			w, _ := OpenAppend(path, 0, Options{Codec: c, FrameSize: 1024})
			good := bytes.Repeat([]byte("committed line\n"), 300)
			w.Write(good)
			committed, err := w.Sync()
			if err != nil {
				t.Fatal(err)
			}
			w.Write(bytes.Repeat([]byte("uncommitted\n"), 500))
			w.bw.Flush() // as if the process died after the OS got some of it
			w.f.Close()
			st, _ := os.Stat(path)
			cut := committed + rng.Int64N(st.Size()-committed+1)
			os.Truncate(path, cut)
			w2, err := OpenAppend(path, committed, Options{Codec: c, FrameSize: 1024})
			if err != nil {
				t.Fatal(err)
			}
			p := w2.Pos()
			more := []byte("after recovery\n")
			w2.Write(more)
			if _, err := w2.Sync(); err != nil {
				t.Fatal(err)
			}
			w2.Close()
			r, _ := OpenReader(path, c, Pos{})
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || !bytes.Equal(got, append(append([]byte{}, good...), more...)) {
				t.Fatalf("%s trial %d: after recovery read %d bytes, err %v", c, trial, len(got), err)
			}
			if b := readFrom(t, path, c, p, len(more)); !bytes.Equal(b, more) {
				t.Fatalf("%s: appended message at %+v reads %q", c, p, b)
			}
		}
	}
}

func TestAbortAndShort(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	w, _ := OpenAppend(path, 0, Options{Codec: CodecZstd, FrameSize: 100})
	w.Write([]byte("keep\n"))
	committed, _ := w.Sync()
	w.Write(bytes.Repeat([]byte("drop"), 100)) // several frames
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("also keep\n"))
	w.Sync()
	w.Close()
	r, _ := OpenReader(path, CodecZstd, Pos{})
	got, _ := io.ReadAll(r)
	r.Close()
	if string(got) != "keep\nalso keep\n" {
		t.Fatalf("after abort: %q", got)
	}
	if _, err := OpenAppend(path, committed+1000, Options{Codec: CodecZstd}); !errors.Is(err, ErrShort) {
		t.Fatalf("short file: %v", err)
	}
	if _, err := OpenAppend(filepath.Join(t.TempDir(), "gone"), 10, Options{}); !errors.Is(err, ErrShort) {
		t.Fatalf("missing file with committed data: %v", err)
	}
}

func BenchmarkWriteZstd(b *testing.B) { benchWrite(b, CodecZstd) }
func BenchmarkWriteGzip(b *testing.B) { benchWrite(b, CodecGzip) }

func benchWrite(b *testing.B, c Codec) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := bytes.Join(msgs(rng, 200), nil)
	w, _ := OpenAppend(filepath.Join(b.TempDir(), "f"), 0, Options{Codec: c})
	defer w.Close()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		w.Write(data)
	}
	w.Sync()
}
