package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/mailkeep/mailkeep/internal/config"
	"github.com/mailkeep/mailkeep/internal/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// pushTimeout bounds the whole push (connect, send, answer).
const pushTimeout = 30 * time.Second

// pushMetrics sends the same metrics as --metrics-file to the Prometheus
// Pushgateway at url (--metrics-push), for runs that have no node of their
// own to leave a file on (Kubernetes CronJobs). The group is
// job="mailkeep" plus shard="K/N" under --shard, and the push replaces it
// (HTTP PUT): each shard owns the series of its accounts, and an account
// removed from the configuration disappears at the next push.
func pushMetrics(ctx context.Context, url string, shard shardFlag, sums []summary, others []config.Account, log *slog.Logger) error {
	if url == "" {
		return nil
	}
	var buf bytes.Buffer
	if err := metrics.Encode(&buf, metricsAccounts(ctx, sums, others, log), time.Now()); err != nil {
		return fmt.Errorf("metrics push: %w", err)
	}
	// Encode's text is the one format mailkeep writes; parse it back into
	// the families the pusher sends, so file and push never differ.
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(&buf)
	if err != nil {
		return fmt.Errorf("metrics push: %w", err)
	}
	g := prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) {
		out := make([]*dto.MetricFamily, 0, len(mfs))
		for _, mf := range mfs {
			out = append(out, mf)
		}
		return out, nil
	})
	p := push.New(url, "mailkeep").Gatherer(g).Client(&http.Client{Timeout: pushTimeout})
	if shard.n != 0 {
		p = p.Grouping("shard", shard.String())
	}
	// An interrupted run (SIGTERM at the Job's deadline) still reports.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), pushTimeout)
	defer cancel()
	if err := p.PushContext(ctx); err != nil {
		return fmt.Errorf("metrics push to %s: %w", url, err)
	}
	return nil
}
