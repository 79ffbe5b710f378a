package main

import (
	"flag"
	"time"
)

// registerTimeout adds --timeout, the wait for a server that owes an
// answer; given with --config it overrides every account's timeout key.
func registerTimeout(fsys interface {
	DurationVar(*time.Duration, string, time.Duration, string)
}, p *time.Duration) {
	fsys.DurationVar(p, "timeout", 0, "end a connection whose server sends nothing for this long while an answer is owed (default 2m, or the config file's timeout)")
}

// timeoutFlag returns --timeout when it was given on fs.
func timeoutFlag(fs *flag.FlagSet) (time.Duration, bool) {
	if fs == nil {
		return 0, false
	}
	var d time.Duration
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name != "timeout" {
			return
		}
		if g, ok := f.Value.(flag.Getter); ok {
			d, set = g.Get().(time.Duration)
		}
	})
	return d, set && d > 0
}

// validTimeout checks --timeout's range, as the config file's is checked.
func validTimeout(d time.Duration) error {
	if d != 0 && (d < 100*time.Millisecond || d > time.Hour) {
		return usageErr("--timeout %s: want 100ms to 1h", d)
	}
	return nil
}
