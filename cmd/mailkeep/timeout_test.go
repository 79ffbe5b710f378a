package main

import (
	"flag"
	"io"
	"testing"
	"time"
)

// TestTimeoutFlagOwnType: only connection --timeout overrides the config
// file; auth's --timeout (the authorization flow) is another flag.
func TestTimeoutFlagOwnType(t *testing.T) {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Duration("timeout", 5*time.Minute, "")
	if err := fs.Parse([]string{"--timeout", "2h"}); err != nil {
		t.Fatal(err)
	}
	if d, ok := timeoutFlag(fs); ok {
		t.Errorf("auth's --timeout taken for the connection timeout: %s", d)
	}
	var d time.Duration
	fs = flag.NewFlagSet("backup", flag.ContinueOnError)
	registerTimeout(fs, &d)
	if _, ok := timeoutFlag(fs); ok {
		t.Error("unset --timeout reported as given")
	}
	if err := fs.Parse([]string{"--timeout", "750ms"}); err != nil {
		t.Fatal(err)
	}
	if got, ok := timeoutFlag(fs); !ok || got != 750*time.Millisecond || d != got {
		t.Errorf("--timeout 750ms: %s %v (bound %s)", got, ok, d)
	}
}
