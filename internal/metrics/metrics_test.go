package metrics

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

var update = flag.Bool("update", false, "rewrite golden files")

var now = time.Date(2026, 12, 1, 3, 0, 5, 0, time.UTC)

func sample() []Account {
	return []Account{
		{Name: "alice", LastRun: now.Add(-5 * time.Second), LastSuccess: now.Add(-5 * time.Second), Outcome: "ok",
			Fetched: 12, Bytes: 345678, Duration: 4500 * time.Millisecond, ArchiveBytes: 1 << 30, Messages: 50123},
		{Name: "bob.pop", LastRun: now.Add(-4 * time.Second), LastSuccess: now.Add(-24 * time.Hour), Outcome: "failed",
			Failures: 1, Duration: 200 * time.Millisecond, ArchiveBytes: 4096, Messages: 10},
		{Name: "new", Outcome: "", ArchiveBytes: -1, Messages: -1}, // never ran, no archive yet
	}
}

func parse(t *testing.T, b []byte) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("Prometheus text parser: %v\n%s", err, b)
	}
	return mfs
}

// value finds the gauge of family name whose labels include want.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) (float64, bool) {
	t.Helper()
	mf := mfs[name]
	if mf == nil {
		return 0, false
	}
	if mf.GetType() != dto.MetricType_GAUGE {
		t.Errorf("%s: type %v, want gauge", name, mf.GetType())
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}

func TestEncodeParses(t *testing.T) {
	var buf bytes.Buffer
	if err := Encode(&buf, sample(), now); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "sample.prom")
	if *update {
		os.WriteFile(golden, buf.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("output differs from %s (go test -update to accept):\n%s", golden, buf.String())
	}
	mfs := parse(t, buf.Bytes())
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
		absent bool
	}{
		{"mailkeep_last_run_timestamp_seconds", map[string]string{"account": "alice"}, float64(now.Unix() - 5), false},
		{"mailkeep_last_success_timestamp_seconds", map[string]string{"account": "bob.pop"}, float64(now.Unix() - 86400), false},
		{"mailkeep_last_run_outcome", map[string]string{"account": "alice", "outcome": "ok"}, 1, false},
		{"mailkeep_last_run_outcome", map[string]string{"account": "alice", "outcome": "failed"}, 0, false},
		{"mailkeep_last_run_outcome", map[string]string{"account": "bob.pop", "outcome": "failed"}, 1, false},
		{"mailkeep_last_run_outcome", map[string]string{"account": "bob.pop", "outcome": "ok"}, 0, false},
		{"mailkeep_last_run_messages_fetched", map[string]string{"account": "alice"}, 12, false},
		{"mailkeep_last_run_bytes_fetched", map[string]string{"account": "alice"}, 345678, false},
		{"mailkeep_last_run_failures", map[string]string{"account": "bob.pop"}, 1, false},
		{"mailkeep_last_run_duration_seconds", map[string]string{"account": "alice"}, 4.5, false},
		{"mailkeep_archive_size_bytes", map[string]string{"account": "alice"}, 1 << 30, false},
		{"mailkeep_archive_messages", map[string]string{"account": "alice"}, 50123, false},
		{"mailkeep_metrics_written_timestamp_seconds", nil, float64(now.Unix()), false},
		// An account that never ran has no run series, and no size while
		// its archive does not exist.
		{"mailkeep_last_run_timestamp_seconds", map[string]string{"account": "new"}, 0, true},
		{"mailkeep_last_success_timestamp_seconds", map[string]string{"account": "new"}, 0, true},
		{"mailkeep_archive_size_bytes", map[string]string{"account": "new"}, 0, true},
	}
	for _, tc := range tests {
		got, ok := value(t, mfs, tc.name, tc.labels)
		if ok == tc.absent {
			t.Errorf("%s%v: present=%v, want %v", tc.name, tc.labels, ok, !tc.absent)
			continue
		}
		if ok && got != tc.want {
			t.Errorf("%s%v = %v, want %v", tc.name, tc.labels, got, tc.want)
		}
	}
	for name, mf := range mfs {
		if mf.GetHelp() == "" {
			t.Errorf("%s has no HELP", name)
		}
	}
}

func TestEncodeRejects(t *testing.T) {
	for _, tc := range []struct {
		name  string
		accts []Account
		want  string
	}{
		{"duplicate", []Account{{Name: "a", ArchiveBytes: -1, Messages: -1}, {Name: "a", ArchiveBytes: -1, Messages: -1}}, `account "a" listed twice`},
		{"outcome", []Account{{Name: "a", LastRun: now, Outcome: "great", ArchiveBytes: -1, Messages: -1}}, `unknown outcome "great"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Encode(&bytes.Buffer{}, tc.accts, now)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestWriteAtomic(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mailkeep.prom")
	if err := os.WriteFile(path, []byte("old contents\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(path, sample(), now); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	mfs := parse(t, b)
	if v, ok := value(t, mfs, "mailkeep_last_run_messages_fetched", map[string]string{"account": "alice"}); !ok || v != 12 {
		t.Errorf("fetched = %v, %v", v, ok)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the metrics file (temporary file left behind?)", len(ents))
	}
	// A failed write leaves the previous file untouched.
	bad := []Account{{Name: "x", LastRun: now, Outcome: "nope"}}
	if err := Write(path, bad, now); err == nil {
		t.Fatal("Write with a bad outcome succeeded")
	}
	if b2, _ := os.ReadFile(path); !bytes.Equal(b, b2) {
		t.Error("a failed Write changed the file")
	}
	if err := Write(filepath.Join(dir, "new", "m.prom"), sample(), now); err != nil {
		t.Errorf("Write into a missing directory: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "file"), nil, 0o644)
	if err := Write(filepath.Join(dir, "file", "m.prom"), sample(), now); err == nil || !strings.Contains(err.Error(), "file/m.prom") {
		t.Errorf("Write below a regular file: %v", err)
	}
}

func TestDirSize(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "x"), make([]byte, 1000), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "b", "y"), make([]byte, 234), 0o644)
	os.Symlink("x", filepath.Join(dir, "link"))
	n, err := DirSize(dir)
	if err != nil || n != 1234 {
		t.Fatalf("DirSize = %d, %v; want 1234", n, err)
	}
	if _, err := DirSize(filepath.Join(dir, "nope")); err == nil {
		t.Error("DirSize of a missing directory succeeded")
	}
}
