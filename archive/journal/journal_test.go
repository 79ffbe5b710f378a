package journal

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func readAll(t *testing.T, path string, from int64) ([]string, Stats) {
	t.Helper()
	var got []string
	st, err := Read(path, from, func(l Line) error {
		got = append(got, string(l.Payload))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got, st
}

func TestAppendRead(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	end1, err := w.Append([][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([][]byte{[]byte(`{"c":3}`)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, st := readAll(t, path, 0)
	if fmt.Sprint(got) != `[{"a":1} {"b":2} {"c":3}]` || st.Lines != 3 || st.Damaged != 0 || st.Torn {
		t.Fatalf("read %v %+v", got, st)
	}
	got, _ = readAll(t, path, end1)
	if fmt.Sprint(got) != `[{"c":3}]` {
		t.Fatalf("read from %d: %v", end1, got)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if _, err := w.Append([][]byte{[]byte("a\nb")}); err == nil {
		t.Error("a payload with a newline was accepted")
	}
}

// A torn last line (a crash inside a write) and a damaged line are
// skipped; the next append starts a fresh line.
func TestTornAndDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	good := Encode([][]byte{[]byte(`{"a":1}`), []byte(`{"b":2}`), []byte(`{"c":3}`)})
	bad := bytes.Replace(good, []byte(`{"b":2}`), []byte(`{"b":9}`), 1)
	torn := append(bad, Encode([][]byte{[]byte(`{"d":4}`)})[:7]...)
	if err := os.WriteFile(path, torn, 0o600); err != nil {
		t.Fatal(err)
	}
	got, st := readAll(t, path, 0)
	if fmt.Sprint(got) != `[{"a":1} {"c":3}]` || st.Damaged != 1 || !st.Torn {
		t.Fatalf("read %v %+v", got, st)
	}
	w, err := OpenWriter(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Append([][]byte{[]byte(`{"e":5}`)}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	got, st = readAll(t, path, 0)
	if fmt.Sprint(got) != `[{"a":1} {"c":3} {"e":5}]` || st.Damaged != 2 || st.Torn {
		t.Fatalf("after append: %v %+v", got, st)
	}
}

func TestRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "outside")
	os.WriteFile(target, nil, 0o600)
	link := filepath.Join(dir, "j")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWriter(link); err == nil {
		t.Fatal("OpenWriter followed a symlink")
	}
	if _, err := Read(link, 0, func(Line) error { return nil }); err == nil {
		t.Fatal("Read followed a symlink")
	}
}

func FuzzRead(f *testing.F) {
	f.Add(Encode([][]byte{[]byte(`{"a":1}`), []byte(`x`)}))
	f.Add([]byte("00000000 \n\n garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n int
		st, err := readLines(bytes.NewReader(data), 0, func(l Line) error {
			if _, ok := check(append([]byte(nil), data[l.Offset:l.End]...)); !ok {
				t.Fatalf("line at %d given out with a bad checksum", l.Offset)
			}
			n++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if st.Lines != n {
			t.Fatalf("stats %d lines, callback saw %d", st.Lines, n)
		}
	})
}
