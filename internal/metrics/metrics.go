// Package metrics writes mailkeep's backup results as a Prometheus
// text-format file for node_exporter's textfile collector.
//
// The file is replaced atomically (temporary file in the same directory,
// fsync, rename, fsync of the directory), so the collector never reads a
// half-written file. Series are built with the Prometheus client library
// and encoded by its text encoder, never formatted by hand.
package metrics

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/mailkeep/mailkeep/internal/durable"
)

// Outcomes are the values of a run's outcome; each account has one
// mailkeep_last_run_outcome series per outcome, 1 for its last run's.
var Outcomes = []string{"ok", "partial", "failed", "interrupted", "killed"}

// Account is what the file says about one account.
type Account struct {
	// Name is the account's name in the config file (the label value).
	Name string
	// LastRun is when the account's last backup started; zero: never ran.
	LastRun time.Time
	// LastSuccess is when its last backup with outcome ok started; zero:
	// never.
	LastSuccess time.Time
	// Outcome is the last run's outcome, one of Outcomes.
	Outcome string
	// Fetched and Bytes are the messages and bytes the last run stored.
	Fetched int
	Bytes   int64
	// Failures is how many folders or messages failed in the last run.
	Failures int
	// Duration is how long the last run took.
	Duration time.Duration
	// ArchiveBytes is the size of the archive directory on disk, and
	// Messages the number of catalogued messages; -1 when unknown.
	ArchiveBytes int64
	Messages     int64
}

// Encode writes the metrics of accts, and the time the file was written
// (now), in Prometheus text format.
func Encode(w io.Writer, accts []Account, now time.Time) error {
	reg := prometheus.NewPedanticRegistry()
	labels := []string{"account"}
	gauge := func(name, help string, extra ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "mailkeep", Name: name, Help: help}, append(labels, extra...))
		reg.MustRegister(g)
		return g
	}
	lastRun := gauge("last_run_timestamp_seconds", "Start of the account's last backup run (Unix time).")
	lastOK := gauge("last_success_timestamp_seconds", "Start of the account's last backup run whose outcome was ok (Unix time); absent when none.")
	outcome := gauge("last_run_outcome", "1 for the outcome of the account's last backup run, 0 for the others.", "outcome")
	fetched := gauge("last_run_messages_fetched", "Messages stored by the last backup run.")
	bytesFetched := gauge("last_run_bytes_fetched", "Message bytes stored by the last backup run.")
	failures := gauge("last_run_failures", "Folders or messages that failed in the last backup run.")
	duration := gauge("last_run_duration_seconds", "Duration of the last backup run.")
	size := gauge("archive_size_bytes", "Size of the account's archive directory on disk.")
	msgs := gauge("archive_messages", "Messages in the account's archive catalog, expunged ones included.")
	written := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "mailkeep", Name: "metrics_written_timestamp_seconds", Help: "When mailkeep wrote this file (Unix time)."})
	reg.MustRegister(written)
	written.Set(unix(now))

	seen := map[string]bool{}
	for _, a := range accts {
		if seen[a.Name] {
			return fmt.Errorf("metrics: account %q listed twice", a.Name)
		}
		seen[a.Name] = true
		if a.ArchiveBytes >= 0 {
			size.WithLabelValues(a.Name).Set(float64(a.ArchiveBytes))
		}
		if a.Messages >= 0 {
			msgs.WithLabelValues(a.Name).Set(float64(a.Messages))
		}
		if !a.LastSuccess.IsZero() {
			lastOK.WithLabelValues(a.Name).Set(unix(a.LastSuccess))
		}
		if a.LastRun.IsZero() {
			continue
		}
		lastRun.WithLabelValues(a.Name).Set(unix(a.LastRun))
		known := false
		for _, o := range Outcomes {
			v := 0.0
			if o == a.Outcome {
				v, known = 1, true
			}
			outcome.WithLabelValues(a.Name, o).Set(v)
		}
		if !known {
			return fmt.Errorf("metrics: account %q: unknown outcome %q", a.Name, a.Outcome)
		}
		fetched.WithLabelValues(a.Name).Set(float64(a.Fetched))
		bytesFetched.WithLabelValues(a.Name).Set(float64(a.Bytes))
		failures.WithLabelValues(a.Name).Set(float64(a.Failures))
		duration.WithLabelValues(a.Name).Set(a.Duration.Seconds())
	}
	mfs, err := reg.Gather()
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(w, mf); err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
	}
	return nil
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// Write replaces the file at path with the metrics of accts, atomically
// and durably, creating its directory when missing. The file is
// world-readable (0644), as node_exporter often runs as another user.
func Write(path string, accts []Account, now time.Time) error {
	var buf bytes.Buffer
	if err := Encode(&buf, accts, now); err != nil {
		return err
	}
	if err := durable.WriteFile(path, buf.Bytes(), 0o644, 0o755); err != nil {
		return fmt.Errorf("metrics file %s: %w", path, err)
	}
	return nil
}

// DirSize is the size in bytes of the regular files below dir.
func DirSize(dir string) (int64, error) {
	var n int64
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && p != dir {
				return nil // removed while we walked (a Maildir tmp file)
			}
			return err
		}
		if d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n, err
}

// Sort orders accounts by name, so the file is stable between runs.
func Sort(accts []Account) {
	sort.Slice(accts, func(i, j int) bool { return accts[i].Name < accts[j].Name })
}
