package mboxfile

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

var codecs = []Codec{CodecZstd, CodecGzip, CodecNone}

func readAt(t *testing.T, path string, c Codec, p Pos, n int) []byte {
	t.Helper()
	r, err := OpenReader(path, c, p)
	if err != nil {
		t.Fatalf("OpenReader %+v: %v", p, err)
	}
	defer r.Close()
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		t.Fatalf("read %d bytes at %+v: %v", n, p, err)
	}
	return b
}

func readAll(t *testing.T, path string, c Codec, p Pos) []byte {
	t.Helper()
	r, err := OpenReader(path, c, p)
	if err != nil {
		t.Fatalf("OpenReader %+v: %v", p, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading from %+v: %v", p, err)
	}
	return b
}

// smallMsgs returns n messages of 10 B to 14 KB: with 1 KiB frames every
// seventh spans several frames.
func smallMsgs(rng *rand.Rand, n int) [][]byte {
	var out [][]byte
	for i := range n {
		size := 10 + rng.IntN(3000)
		if i%7 == 0 {
			size = 5000 + rng.IntN(9000)
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = "abcdefgh \n"[rng.IntN(10)]
		}
		out = append(out, fmt.Appendf(b, "#%d\n", i))
	}
	return out
}

func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestAppendSessions appends messages over several OpenAppend sessions,
// with Syncs inside sessions too, and reads each message back from the
// position Pos gave before it was written.
func TestAppendSessions(t *testing.T) {
	for _, c := range codecs {
		for _, frame := range []int{1024, 64 << 10} {
			t.Run(fmt.Sprintf("%s/%d", c, frame), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "a", "b", "f.mbox")
				rng := rand.New(rand.NewPCG(3, uint64(frame)))
				var all []byte
				var pos []Pos
				var offs []int
				var msgs [][]byte
				var committed int64
				var before []byte // the file as the previous session left it
				for session := range 4 {
					w, err := OpenAppend(path, committed, Options{Codec: c, FrameSize: frame})
					if err != nil {
						t.Fatal(err)
					}
					if p := w.Pos(); p != (Pos{FrameOffset: committed}) {
						t.Fatalf("session %d starts at %+v, want frame offset %d", session, p, committed)
					}
					ms := smallMsgs(rng, 25)
					if session == 2 {
						ms = append(ms, corpus(uint64(session), 200<<10)...)
					}
					for i, m := range ms {
						pos = append(pos, w.Pos())
						offs = append(offs, len(all))
						msgs = append(msgs, m)
						// Uneven writes, as a copy loop gives.
						for p := m; len(p) > 0; {
							k := min(len(p), 1+rng.IntN(5000))
							if n, err := w.Write(p[:k]); err != nil || n != k {
								t.Fatalf("Write: %d of %d, %v", n, k, err)
							}
							p = p[k:]
						}
						all = append(all, m...)
						if i%10 == 9 {
							if _, err = w.Sync(); err != nil {
								t.Fatal(err)
							}
						}
					}
					if committed, err = w.Sync(); err != nil {
						t.Fatal(err)
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					now := fileBytes(t, path)
					if int64(len(now)) != committed {
						t.Fatalf("file has %d bytes, Sync said %d", len(now), committed)
					}
					if !bytes.HasPrefix(now, before) {
						t.Fatalf("session %d changed bytes that were there", session)
					}
					before = now
				}
				spanning := 0
				for i, p := range pos {
					if got := readAt(t, path, c, p, len(msgs[i])); !bytes.Equal(got, msgs[i]) {
						t.Fatalf("message %d at %+v differs", i, p)
					}
					if i+1 < len(pos) && pos[i+1].FrameOffset != p.FrameOffset {
						spanning++
					}
					if c == CodecNone && (p.Offset != 0 || p.FrameOffset != int64(offs[i])) {
						t.Fatalf("uncompressed message %d at %+v, want file offset %d", i, p, offs[i])
					}
				}
				if c != CodecNone && frame == 1024 && spanning < len(pos)/10 {
					t.Errorf("only %d of %d messages end in another frame than they start", spanning, len(pos))
				}
				for _, i := range []int{0, 1, len(pos) / 2, len(pos) - 1} {
					if got := readAll(t, path, c, pos[i]); !bytes.Equal(got, all[offs[i]:]) {
						t.Fatalf("stream from message %d at %+v: %d bytes, want %d", i, pos[i], len(got), len(all)-offs[i])
					}
				}
				for _, p := range []string{path, filepath.Join(dir, "a", "b"), filepath.Join(dir, "a")} {
					st, err := os.Stat(p)
					if err != nil {
						t.Fatal(err)
					}
					if want := map[bool]os.FileMode{true: 0o700, false: 0o600}[st.IsDir()]; st.Mode().Perm() != want {
						t.Errorf("%s: mode %v, want %v", p, st.Mode().Perm(), want)
					}
				}
			})
		}
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	if err := os.WriteFile(to, fileBytes(t, from), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestCrash simulates a crash: data written after the last Sync reaches
// the disk in part, torn anywhere (inside a frame, between frames). A copy
// of the file stands for the disk after the crash; the next OpenAppend
// with the committed size must keep what was committed and append after it.
func TestCrash(t *testing.T) {
	for _, c := range codecs {
		t.Run(string(c), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "f")
			rng := rand.New(rand.NewPCG(5, 6))
			w, err := OpenAppend(path, 0, Options{Codec: c, FrameSize: 1024})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			good := bytes.Repeat([]byte("committed line\n"), 300)
			w.Write(good)
			committed, err := w.Sync()
			if err != nil {
				t.Fatal(err)
			}
			w.Write(bytes.Repeat([]byte("uncommitted\n"), 1000)) // several frames and a half
			w.bw.Flush()                                         // the OS got it, but no fsync
			size := int64(len(fileBytes(t, path)))
			if size <= committed+100 {
				t.Fatalf("only %d bytes past committed reached the file", size-committed)
			}
			cuts := []int64{committed, committed + 1, size - 1, size}
			for range 16 {
				cuts = append(cuts, committed+rng.Int64N(size-committed+1))
			}
			for _, cut := range cuts {
				crashed := filepath.Join(dir, fmt.Sprintf("crash%d", cut))
				copyFile(t, path, crashed)
				if err := os.Truncate(crashed, cut); err != nil {
					t.Fatal(err)
				}
				w2, err := OpenAppend(crashed, committed, Options{Codec: c, FrameSize: 1024})
				if err != nil {
					t.Fatalf("cut at %d: %v", cut, err)
				}
				if got := int64(len(fileBytes(t, crashed))); got != committed {
					t.Fatalf("cut at %d: OpenAppend left %d bytes, want %d", cut, got, committed)
				}
				if got := readAll(t, crashed, c, Pos{}); !bytes.Equal(got, good) {
					t.Fatalf("cut at %d: committed data reads back as %d bytes", cut, len(got))
				}
				p := w2.Pos()
				more := []byte(fmt.Sprintf("after recovery from a cut at %d\n", cut))
				w2.Write(more)
				if _, err := w2.Sync(); err != nil {
					t.Fatal(err)
				}
				w2.Close()
				if got := readAll(t, crashed, c, Pos{}); !bytes.Equal(got, append(append([]byte{}, good...), more...)) {
					t.Fatalf("cut at %d: after recovery %d bytes read back", cut, len(got))
				}
				if got := readAt(t, crashed, c, p, len(more)); !bytes.Equal(got, more) {
					t.Fatalf("cut at %d: appended message at %+v reads %q", cut, p, got)
				}
			}
			// The writer that "crashed" can still drop its tail and go on.
			if err := w.Abort(); err != nil {
				t.Fatal(err)
			}
			w.Write([]byte("last\n"))
			if _, err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, path, c, Pos{}); string(got) != string(good)+"last\n" {
				t.Fatalf("after Abort: %d bytes", len(got))
			}
		})
	}
}

func TestShort(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	w, err := OpenAppend(path, 0, Options{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("keep\n"))
	committed, err := w.Sync()
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	before := fileBytes(t, path)
	if _, err := OpenAppend(path, committed+1000, Options{}); !errors.Is(err, ErrShort) || !strings.Contains(err.Error(), path) {
		t.Fatalf("shorter file: %v", err)
	}
	if after := fileBytes(t, path); !bytes.Equal(after, before) {
		t.Fatal("OpenAppend of a short file changed it")
	}
	gone := filepath.Join(dir, "sub", "gone")
	if _, err := OpenAppend(gone, 10, Options{}); !errors.Is(err, ErrShort) {
		t.Fatalf("missing file with committed data: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(gone)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("OpenAppend of a lost file created its directory: %v", err)
	}
	if _, err := OpenAppend(dir, 0, Options{}); err == nil {
		t.Fatal("OpenAppend of a directory succeeded")
	}
	if _, err := OpenAppend(path, 0, Options{Codec: "lz4"}); err == nil {
		t.Fatal("unknown codec accepted")
	}
	if _, err := OpenAppend(path, -1, Options{}); err == nil {
		t.Fatal("negative committed size accepted")
	}
	if _, err := OpenAppend(path, 0, Options{Codec: CodecGzip, Level: 42}); err == nil {
		t.Fatal("gzip level 42 accepted")
	}
	if after := fileBytes(t, path); !bytes.Equal(after, before) {
		t.Fatal("a failed OpenAppend changed the file")
	}
}

// TestAbort drops what was written since the last Sync: inside a frame,
// across frame boundaries, after a Sync that left a frame half full.
func TestAbort(t *testing.T) {
	for _, c := range codecs {
		for _, tt := range []struct {
			name string
			drop int // bytes written and then aborted; frames are 100 bytes
		}{{"nothing", 0}, {"inside a frame", 37}, {"to the frame's end", 70}, {"across frames", 1234}, {"many frames", 40_000}} {
			t.Run(string(c)+"/"+tt.name, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "f")
				w, err := OpenAppend(path, 0, Options{Codec: c, FrameSize: 100})
				if err != nil {
					t.Fatal(err)
				}
				defer w.Close()
				w.Write([]byte("keep this, 30 bytes of data.\n")) // 30 bytes: a frame left open
				committed, err := w.Sync()
				if err != nil {
					t.Fatal(err)
				}
				start := w.Pos()
				w.Write(bytes.Repeat([]byte("x"), tt.drop))
				if err := w.Abort(); err != nil {
					t.Fatal(err)
				}
				if p := w.Pos(); p != start {
					t.Fatalf("Pos after Abort %+v, want %+v", p, start)
				}
				if got := int64(len(fileBytes(t, path))); got != committed {
					t.Fatalf("file has %d bytes after Abort, want %d", got, committed)
				}
				w.Write([]byte("and this\n"))
				if _, err := w.Sync(); err != nil {
					t.Fatal(err)
				}
				if got := readAll(t, path, c, Pos{}); string(got) != "keep this, 30 bytes of data.\nand this\n" {
					t.Fatalf("after Abort: %q", got)
				}
				if got := readAt(t, path, c, start, 9); string(got) != "and this\n" {
					t.Fatalf("at %+v after Abort: %q", start, got)
				}
			})
		}
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestWriteError checks that a failed write poisons the Writer until Abort,
// so that a Sync cannot commit a damaged stream.
func TestWriteError(t *testing.T) {
	for _, c := range codecs {
		t.Run(string(c), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "f")
			w, err := OpenAppend(path, 0, Options{Codec: c, FrameSize: 64 << 10})
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			w.Write([]byte("good\n"))
			committed, _ := w.Sync()
			w.bw.Reset(failingWriter{}) // the disk fills up
			data := corpus(1, 2<<20)
			var werr error
			for _, m := range data {
				if _, werr = w.Write(m); werr != nil {
					break
				}
			}
			if werr == nil {
				_, werr = w.Sync()
			}
			if werr == nil || !strings.Contains(werr.Error(), path) {
				t.Fatalf("writing to a full disk: %v", werr)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Fatal("Write after an error succeeded")
			}
			if n, err := w.Sync(); err == nil {
				t.Fatalf("Sync after an error succeeded: %d", n)
			}
			if err := w.Abort(); err != nil { // also restores the file as the target
				t.Fatal(err)
			}
			w.Write([]byte("more\n"))
			if n, err := w.Sync(); err != nil || n <= committed {
				t.Fatalf("Sync after Abort: %d, %v", n, err)
			}
			if got := readAll(t, path, c, Pos{}); string(got) != "good\nmore\n" {
				t.Fatalf("after recovery: %q", got)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte("x")); err == nil {
				t.Fatal("Write after Close succeeded")
			}
			if err := w.Close(); !errors.Is(err, ErrClosed) {
				t.Fatalf("second Close: %v", err)
			}
		})
	}
}

func TestLevels(t *testing.T) {
	data := []byte(text(rand.New(rand.NewPCG(2, 2)), 300<<10))
	for _, tt := range []struct {
		codec Codec
		level int
	}{{CodecZstd, -1}, {CodecZstd, 1}, {CodecZstd, 3}, {CodecZstd, 9}, {CodecZstd, 19}, {CodecGzip, -2}, {CodecGzip, 1}, {CodecGzip, 6}, {CodecGzip, 9}, {"", 0}} {
		path := filepath.Join(t.TempDir(), "f")
		w, err := OpenAppend(path, 0, Options{Codec: tt.codec, Level: tt.level, FrameSize: 100 << 10})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		size, err := w.Sync()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, path, tt.codec, Pos{}); !bytes.Equal(got, data) {
			t.Errorf("%s level %d: %d bytes read back, want %d", tt.codec, tt.level, len(got), len(data))
		}
		if size > int64(len(data))*6/10 { // Huffman-only gzip (-2) gives 0.57
			t.Errorf("%s level %d: %d bytes compress to %d", tt.codec, tt.level, len(data), size)
		}
	}
}

// TestDefaultLevelEntropyCodesLiterals: the default zstd level packs base64
// of random bytes (an attachment of a JPEG or a ZIP) to about 3/4 of its
// size, which raw literals (level -1, the earlier default) do not.
func TestDefaultLevelEntropyCodesLiterals(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	raw := make([]byte, 1<<20)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	data := []byte(base64.StdEncoding.EncodeToString(raw))
	for _, tt := range []struct {
		level  int
		lo, hi float64
	}{{0, 0.70, 0.80}, {-1, 0.95, 1.01}, {3, 0.70, 0.80}} {
		path := filepath.Join(t.TempDir(), "f")
		w, err := OpenAppend(path, 0, Options{Level: tt.level})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		size, err := w.Sync()
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := readAll(t, path, CodecZstd, Pos{}); !bytes.Equal(got, data) {
			t.Fatalf("level %d: read back differs", tt.level)
		}
		if r := float64(size) / float64(len(data)); r < tt.lo || r > tt.hi {
			t.Errorf("level %d: ratio %.3f, want %.2f to %.2f", tt.level, r, tt.lo, tt.hi)
		}
	}
}

func TestCheckLevel(t *testing.T) {
	for _, tt := range []struct {
		codec Codec
		level int
		ok    bool
	}{{CodecZstd, 0, true}, {CodecZstd, -1, true}, {CodecZstd, 22, true}, {CodecZstd, 23, false}, {CodecZstd, -2, false},
		{CodecGzip, -3, true}, {CodecGzip, 9, true}, {CodecGzip, 10, false}, {CodecNone, 0, true}, {CodecNone, 1, false}} {
		err := CheckLevel(tt.codec, tt.level)
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrLevel)) {
			t.Errorf("CheckLevel(%s, %d) = %v", tt.codec, tt.level, err)
		}
		_, err = OpenAppend(filepath.Join(t.TempDir(), "f"), 0, Options{Codec: tt.codec, Level: tt.level})
		if (err == nil) != tt.ok || (err != nil && !errors.Is(err, ErrLevel)) {
			t.Errorf("OpenAppend(%s, level %d) = %v", tt.codec, tt.level, err)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []Codec{CodecZstd, CodecGzip} {
		path := filepath.Join(dir, string(c))
		w, _ := OpenAppend(path, 0, Options{Codec: c, FrameSize: 1000})
		w.Write(bytes.Repeat([]byte("0123456789"), 250))
		size, _ := w.Sync()
		w.Close()
		for _, tt := range []struct {
			name string
			pos  Pos
		}{
			{"not a frame start", Pos{FrameOffset: 3}},
			{"past the frame's data", Pos{FrameOffset: 0, Offset: 1_000_000}},
			{"negative", Pos{FrameOffset: -1}},
		} {
			r, err := OpenReader(path, c, tt.pos)
			if err == nil {
				_, err = io.ReadAll(r)
				r.Close()
			}
			if err == nil {
				t.Errorf("%s, %s: no error", c, tt.name)
			}
		}
		if got := readAll(t, path, c, Pos{FrameOffset: size}); len(got) != 0 {
			t.Errorf("%s: %d bytes at the end of the file", c, len(got))
		}
		// A damaged frame is an error, never wrong data.
		b := fileBytes(t, path)
		b[len(b)/2] ^= 0x55
		os.WriteFile(path, b, 0o600)
		r, err := OpenReader(path, c, Pos{})
		if err == nil {
			var got []byte
			got, err = io.ReadAll(r)
			r.Close()
			if err == nil {
				t.Errorf("%s: a damaged file read without error (%d bytes)", c, len(got))
			}
		}
	}
	if _, err := OpenReader(filepath.Join(dir, "missing"), CodecZstd, Pos{}); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if _, err := OpenReader(filepath.Join(dir, "zstd"), "lz4", Pos{}); err == nil {
		t.Error("unknown codec accepted")
	}
}

func need(t *testing.T, prog string) string {
	p, err := exec.LookPath(prog)
	if err == nil {
		return p
	}
	if prog == "python3" {
		if _, err := os.Stat("/root/.pyenv/shims/python3"); err == nil {
			return "/root/.pyenv/shims/python3"
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s missing", prog)
	}
	t.Skipf("%s missing", prog)
	return ""
}

// TestOtherDecoders reads a file of many frames from several sessions
// with independent decoders: zstdcat, zcat and Python's gzip module.
func TestOtherDecoders(t *testing.T) {
	for _, tt := range []struct {
		codec Codec
		cmd   []string
	}{
		{CodecZstd, []string{"zstdcat"}},
		{CodecGzip, []string{"zcat"}},
		{CodecGzip, []string{"python3", "-c", "import gzip, sys; sys.stdout.buffer.write(gzip.open(sys.argv[1]).read())"}},
	} {
		t.Run(tt.cmd[0], func(t *testing.T) {
			prog := need(t, tt.cmd[0])
			path := filepath.Join(t.TempDir(), "f")
			var all []byte
			var committed int64
			for session := range 3 {
				w, err := OpenAppend(path, committed, Options{Codec: tt.codec, FrameSize: 64 << 10})
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range corpus(uint64(session), 300<<10) {
					w.Write(m)
					all = append(all, m...)
				}
				committed, err = w.Sync()
				if err != nil {
					t.Fatal(err)
				}
				w.Write([]byte("never committed")) // dropped by Close
				w.Close()
			}
			out, err := exec.Command(prog, append(tt.cmd[1:], path)...).Output()
			if err != nil {
				t.Fatalf("%s: %v", tt.cmd[0], err)
			}
			if !bytes.Equal(out, all) {
				t.Fatalf("%s read %d bytes, want %d", tt.cmd[0], len(out), len(all))
			}
		})
	}
}

// TestMemory checks that writing and reading a large file allocates a
// bounded amount, not in proportion to the data.
func TestMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	data := bytes.Join(corpus(7, 4<<20), nil)
	for _, c := range []Codec{CodecZstd, CodecGzip} {
		path := filepath.Join(t.TempDir(), "f")
		var m0, m1, m2 runtime.MemStats
		runtime.ReadMemStats(&m0)
		w, err := OpenAppend(path, 0, Options{Codec: c})
		if err != nil {
			t.Fatal(err)
		}
		for range 8 { // 32 MB
			w.Write(data)
		}
		w.Sync()
		w.Close()
		runtime.ReadMemStats(&m1)
		r, _ := OpenReader(path, c, Pos{})
		n, err := io.Copy(io.Discard, r)
		r.Close()
		runtime.ReadMemStats(&m2)
		if err != nil || n != 8*int64(len(data)) {
			t.Fatalf("%s: read %d bytes, %v", c, n, err)
		}
		wrote, read := m1.TotalAlloc-m0.TotalAlloc, m2.TotalAlloc-m1.TotalAlloc
		t.Logf("%s: writing %d MB allocated %.1f MB, reading %.1f MB", c, n>>20, float64(wrote)/(1<<20), float64(read)/(1<<20))
		if wrote > 24<<20 || read > 24<<20 {
			t.Errorf("%s: writing %d MB allocated %d MB, reading %d MB", c, n>>20, wrote>>20, read>>20)
		}
	}
}

func BenchmarkWriteZstd(b *testing.B) { benchWrite(b, CodecZstd) }
func BenchmarkWriteGzip(b *testing.B) { benchWrite(b, CodecGzip) }
func BenchmarkWriteNone(b *testing.B) { benchWrite(b, CodecNone) }

// benchWrite writes a 16 MB corpus per op, a message at a time, with a
// Sync (fsync) every 4 MB as the archive does, to one open Writer.
func benchWrite(b *testing.B, c Codec) {
	msgs := corpus(1, 16<<20)
	total := 0
	for _, m := range msgs {
		total += len(m)
	}
	w, err := OpenAppend(filepath.Join(b.TempDir(), "f"), 0, Options{Codec: c})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	b.SetBytes(int64(total))
	b.ReportAllocs()
	var size int64
	for b.Loop() {
		n := 0
		for _, m := range msgs {
			w.Write(m)
			if n += len(m); n >= 4<<20 {
				w.Sync()
				n = 0
			}
		}
		if size, err = w.Sync(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(size)/float64(total)/float64(b.N), "ratio")
}

func BenchmarkReadZstd(b *testing.B) { benchRead(b, CodecZstd) }
func BenchmarkReadGzip(b *testing.B) { benchRead(b, CodecGzip) }

func benchRead(b *testing.B, c Codec) {
	path := filepath.Join(b.TempDir(), "f")
	w, _ := OpenAppend(path, 0, Options{Codec: c})
	total := 0
	for _, m := range corpus(1, 16<<20) {
		w.Write(m)
		total += len(m)
	}
	w.Sync()
	w.Close()
	b.SetBytes(int64(total))
	b.ReportAllocs()
	for b.Loop() {
		r, _ := OpenReader(path, c, Pos{})
		if n, err := io.Copy(io.Discard, r); err != nil || n != int64(total) {
			b.Fatal(n, err)
		}
		r.Close()
	}
}

// BenchmarkOpenSmall: opening and reading a folder file of a few small
// messages, as verify and export do once per folder.
func BenchmarkOpenSmall(b *testing.B) {
	path := filepath.Join(b.TempDir(), "f")
	w, err := OpenAppend(path, 0, Options{})
	if err != nil {
		b.Fatal(err)
	}
	w.Write([]byte(text(rand.New(rand.NewPCG(4, 4)), 20<<10)))
	w.Sync()
	w.Close()
	b.ResetTimer()
	for range b.N {
		rc, err := OpenReader(path, CodecZstd, Pos{})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rc); err != nil {
			b.Fatal(err)
		}
		rc.Close()
	}
}

// Readers reusing pooled decoders read their own files, one after the
// other and side by side.
func TestPooledDecoders(t *testing.T) {
	dir := t.TempDir()
	var want [][]byte
	for i := range 4 {
		data := []byte(text(rand.New(rand.NewPCG(uint64(i), 9)), (i+1)*50<<10))
		want = append(want, data)
		w, err := OpenAppend(filepath.Join(dir, fmt.Sprint(i)), 0, Options{FrameSize: 30 << 10})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(data)
		w.Sync()
		w.Close()
	}
	for round := range 3 {
		var rcs []io.ReadCloser
		for i := range want {
			rc, err := OpenReader(filepath.Join(dir, fmt.Sprint(i)), CodecZstd, Pos{})
			if err != nil {
				t.Fatal(err)
			}
			rcs = append(rcs, rc)
		}
		for i, rc := range rcs {
			got, err := io.ReadAll(rc)
			if err != nil || !bytes.Equal(got, want[i]) {
				t.Fatalf("round %d file %d: %v, %d bytes, want %d", round, i, err, len(got), len(want[i]))
			}
		}
		for i, rc := range rcs {
			if i%2 == round%2 { // half closed early, half after
				rc.Close()
			}
		}
		for i, rc := range rcs {
			if i%2 != round%2 {
				rc.Close()
			}
		}
	}
}

// TestPooledEncoders: writers opened one after the other (and two at
// once) take their zstd encoder and write buffer from the pools that
// earlier ones gave them back to at Close, across compression levels;
// every file reads back whole.
func TestPooledEncoders(t *testing.T) {
	dir := t.TempDir()
	levels := []int{0, 3, 0, -1, 3, 0}
	want := make([][]byte, len(levels))
	for i, level := range levels {
		path := filepath.Join(dir, fmt.Sprint(i))
		w, err := OpenAppend(path, 0, Options{Codec: CodecZstd, Level: level, FrameSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		// A second writer open at the same time takes encoders of its own.
		w2, err := OpenAppend(path+"b", 0, Options{Codec: CodecZstd, Level: level, FrameSize: 64 << 10})
		if err != nil {
			t.Fatal(err)
		}
		want[i] = bytes.Repeat([]byte(fmt.Sprintf("file %d at level %d\n", i, level)), 3000*(i+1))
		for _, w := range []*Writer{w, w2} {
			if _, err := w.Write(want[i]); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Sync(); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := range levels {
		path := filepath.Join(dir, fmt.Sprint(i))
		for _, p := range []string{path, path + "b"} {
			if got := readAll(t, p, CodecZstd, Pos{}); !bytes.Equal(got, want[i]) {
				t.Errorf("%s: read back %d bytes, want %d", p, len(got), len(want[i]))
			}
		}
	}
}
