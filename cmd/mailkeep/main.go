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

var version = "dev"

const usage = `mailkeep: offline e-mail backup and restore

Usage:
  mailkeep backup  --imap URL | --pop3 URL --archive DIR [options]
  mailkeep backup  [--config FILE] [NAME...]     (accounts from the config file)
  mailkeep check   [--config FILE] [NAME...]     (what a backup would fetch; writes nothing)
  mailkeep restore --archive DIR --imap URL [options]
  mailkeep verify  --archive DIR | [NAME...] [--server]   (read every message back against its SHA-256)
  mailkeep export  --archive DIR | NAME --to PATH --format mbox|maildir|eml [--folder GLOB] [--as-of T]
  mailkeep auth    [--config FILE] NAME             (authorize an oauth2 account once)
  mailkeep reindex --archive DIR | [--config FILE] NAME...
                                                   (rebuild a lost or damaged catalog)
  mailkeep ls      --archive DIR [--folder F]
  mailkeep cat     --archive DIR FOLDER UID
  mailkeep index   --archive DIR | [--config FILE] [NAME...]   (build or update the search index)
  mailkeep search  [--archive DIR | NAME...] [--json] [--limit N] QUERY...
  mailkeep show    --archive DIR [--attachments DIR] [--raw] FOLDER UID
  mailkeep serve   [--archive DIR | NAME...] [--listen 127.0.0.1:1143] [--as-of T] [--include-expunged]
                                                   (serve archives read-only over IMAP)
  mailkeep version

Run 'mailkeep COMMAND -h' for a command's options.
`

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
		fmt.Fprint(stderr, usage)
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
	var code int
	switch cmd {
	case "backup":
		code = cmdBackup(ctx, rest, stdout, stderr)
	case "check":
		code = cmdCheck(ctx, rest, stdout, stderr)
	case "restore":
		code = cmdRestore(ctx, rest, stdout, stderr)
	case "verify":
		code = cmdVerify(ctx, rest, stdout, stderr)
	case "export":
		code = cmdExport(ctx, rest, stdout, stderr)
	case "auth":
		code = cmdAuth(ctx, rest, stdout, stderr)
	case "reindex":
		code = cmdReindex(ctx, rest, stdout, stderr)
	case "ls":
		code = cmdLs(ctx, rest, stdout, stderr)
	case "cat":
		code = cmdCat(ctx, rest, stdout, stderr)
	case "index":
		code = cmdIndex(ctx, rest, stdout, stderr)
	case "search":
		code = cmdSearch(ctx, rest, stdout, stderr)
	case "show":
		code = cmdShow(ctx, rest, stdout, stderr)
	case "serve":
		code = cmdServe(ctx, rest, stdout, stderr)
	case "version", "--version":
		fmt.Fprintln(stdout, "mailkeep", version)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mailkeep: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
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
	switch {
	case err == nil:
		return exitOK
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
	return fs
}

// parse parses flags; it returns false and the exit code when parsing ended the command.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	return 0, true
}

// parseInterspersed parses flags before and after positional arguments
// ("verify alice --server") and returns the positional ones.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, int, bool) {
	var pos []string
	for {
		if code, ok := parse(fs, args); !ok {
			return nil, code, false
		}
		if fs.NArg() == 0 {
			return pos, 0, true
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
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
