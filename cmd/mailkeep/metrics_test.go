package main

import (
	"os"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// promFile is a metrics file as the Prometheus text parser reads it.
type promFile map[string]*dto.MetricFamily

func readMetrics(t *testing.T, path string) promFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return mfs
}

func (p promFile) find(name, account, outcome string) (float64, bool) {
	for _, m := range p[name].GetMetric() {
		var acct, out string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "account":
				acct = l.GetValue()
			case "outcome":
				out = l.GetValue()
			}
		}
		if acct == account && out == outcome {
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

func (p promFile) get(t *testing.T, name, account, outcome string) float64 {
	t.Helper()
	v, ok := p.find(name, account, outcome)
	if !ok {
		t.Errorf("metrics: no %s{account=%q,outcome=%q}", name, account, outcome)
	}
	return v
}

func (p promFile) want(t *testing.T, name, account, outcome string, want float64) {
	t.Helper()
	if v := p.get(t, name, account, outcome); v != want {
		t.Errorf("metrics: %s{account=%q,outcome=%q} = %v, want %v", name, account, outcome, v, want)
	}
}

func (p promFile) absent(t *testing.T, name, account string) {
	t.Helper()
	if v, ok := p.find(name, account, ""); ok {
		t.Errorf("metrics: %s{account=%q} = %v, want none", name, account, v)
	}
}
