package main

import (
	"strings"
	"testing"
)

// TestConnectionsRange: --connections outside 1..32 (the config file's
// range) is a usage error for backup and restore, before anything runs.
func TestConnectionsRange(t *testing.T) {
	dir := t.TempDir()
	for _, cmd := range []string{"backup", "restore"} {
		for _, v := range []string{"0", "1000", "-1", "33", "many"} {
			r := runCLI(cmd, "--imap", "imap://a@127.0.0.1:1", "--tls", "none", "--archive", dir, "--connections", v)
			if r.code != exitUsage || !strings.Contains(r.stderr, "want 1 to 32") {
				t.Errorf("%s --connections %s: exit %d, stderr %q; want 2 and the range", cmd, v, r.code, r.stderr)
			}
		}
		for _, v := range []string{"1", "32"} {
			r := runCLI(cmd, "--connections", v, "--no-such-flag")
			if strings.Contains(r.stderr, "want 1 to 32") {
				t.Errorf("%s --connections %s refused: %q", cmd, v, r.stderr)
			}
		}
	}
}
