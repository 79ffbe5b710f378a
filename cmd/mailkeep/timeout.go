package main

import (
	"flag"
	"time"
)

// timeoutValue is --timeout, the wait for a server that owes an answer.
// Its own type tells it from other commands' flags of the same name (auth
// --timeout bounds the authorization flow).
type timeoutValue struct{ p *time.Duration }

func (v timeoutValue) String() string {
	if v.p == nil || *v.p == 0 {
		return ""
	}
	return v.p.String()
}

func (v timeoutValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func (v timeoutValue) Get() any { return *v.p }

// registerTimeout adds --timeout; given with --config it overrides every
// account's timeout key.
func registerTimeout(fsys interface {
	Var(flag.Value, string, string)
}, p *time.Duration) {
	fsys.Var(timeoutValue{p}, "timeout", "end a connection whose server sends nothing for this long while an answer is owed (default 2m, or the config file's timeout)")
}

// timeoutFlag returns --timeout (registerTimeout's) when it was given on fs.
func timeoutFlag(fs *flag.FlagSet) (time.Duration, bool) {
	if fs == nil {
		return 0, false
	}
	var d time.Duration
	set := false
	fs.Visit(func(f *flag.Flag) {
		if v, ok := f.Value.(timeoutValue); ok && f.Name == "timeout" {
			d, set = *v.p, true
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
