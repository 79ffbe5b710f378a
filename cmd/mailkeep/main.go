// Command mailkeep backs up IMAP and POP3 accounts into open-format
// archives and restores them to any IMAP server. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
)

// Exit codes.
const (
	exitOK          = 0
	exitFailed      = 1
	exitUsage       = 2
	exitPartial     = 3
	exitLocked      = 11
	exitInterrupted = 130
)

func main() {
	// MAILKEEP_CPUPROFILE=FILE writes a CPU profile (for benchmarks).
	if p := os.Getenv("MAILKEEP_CPUPROFILE"); p != "" {
		if f, err := os.Create(p); err == nil {
			pprof.StartCPUProfile(f)
			code := run(os.Args[1:], os.Stdout, os.Stderr)
			pprof.StopCPUProfile()
			f.Close()
			os.Exit(code)
		}
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printOverview(stderr)
		return exitUsage
	}
	if jsonLogFormat(args) {
		jl := newJSONLines(stderr)
		defer jl.Flush()
		stderr = jl
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	signalReady()
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "--version":
		cmd = "version"
	case "-h", "--help":
		cmd = "help"
	}
	c := lookupCommand(cmd)
	if c == nil {
		unknownCommand(stderr, cmd)
		return exitUsage
	}
	if c.name != "help" && wantsHelp(rest) {
		printCommandHelp(stdout, c)
		return exitOK
	}
	code := c.run(ctx, rest, stdout, stderr)
	if ctx.Err() != nil && code != exitOK && code != exitUsage {
		return exitInterrupted
	}
	return code
}

// usageError marks errors that exit 2.
type usageError struct{ error }

func usageErr(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue usageError
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case isLocked(err):
		return exitLocked
	}
	return exitFailed
}

// stringsFlag is a repeatable string flag.
type stringsFlag []string

func (s *stringsFlag) String() string     { return strings.Join(*s, ",") }
func (s *stringsFlag) Set(v string) error { *s = append(*s, v); return nil }

// common holds the flags every command shares.
type common struct {
	quiet     bool
	verbose   bool
	jsonOut   bool
	logFormat string
}

func (c *common) register(fs *flag.FlagSet) {
	fs.BoolVar(&c.quiet, "quiet", false, "print nothing on success")
	fs.BoolVar(&c.verbose, "verbose", false, "log each folder's work")
	fs.BoolVar(&c.jsonOut, "json", false, "print a machine-readable summary on stdout")
	c.logFormat = "text"
	fs.Func("log-format", "log format on stderr: text (default) or json (one JSON object a line)", func(v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("want text or json, not %q", v)
		}
		c.logFormat = v
		return nil
	})
}

func (c *common) logger(stderr io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if c.quiet {
		level = slog.LevelError
	}
	if c.verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(stderr, opts))
	}
	return slog.New(slog.NewTextHandler(stderr, opts))
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("mailkeep "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintf(stderr, "Run 'mailkeep help %s' for the options.\n", name) }
	return fs
}

// parse parses flags, before and after the positional arguments ("--"
// ends them; fs.Args() are the positional ones); it returns false and the
// exit code when parsing ended the command.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	flags, pos, err := interspersed(fs, args)
	if err != nil {
		fmt.Fprintf(fs.Output(), "%s: %v\n", fs.Name(), err)
		fs.Usage()
		return exitUsage, false
	}
	if err := fs.Parse(flags); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if err := fs.Parse(append([]string{"--"}, pos...)); err != nil { // sets fs.Args()
		return exitUsage, false
	}
	return 0, true
}

// outcome classifies a finished run for the summary, the catalog and the
// exit code.
func outcome(ctx context.Context, err error, failures int) (name, errText string, code int) {
	switch {
	case err != nil && ctx.Err() != nil:
		return "interrupted", "interrupted", exitInterrupted
	case err != nil:
		return "failed", err.Error(), exitFailed
	case failures > 0:
		return "partial", "", exitPartial
	}
	return "ok", "", exitOK
}

// printFailures names every failure, then the run's error, on stderr.
func printFailures(stderr io.Writer, cmd string, failures []string, err error) {
	for _, f := range failures {
		fmt.Fprintf(stderr, "mailkeep %s: failed: %s\n", cmd, f)
	}
	if err != nil {
		fmt.Fprintf(stderr, "mailkeep %s: %v\n", cmd, err)
	}
}
