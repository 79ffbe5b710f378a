package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/progress"
)

// connFlags are the server connection flags backup and restore share.
type connFlags struct {
	imapURL, pop3URL string
	tls              string
	caFile           string
	pw               account.PasswordSource
}

func (c *connFlags) register(fsys interface {
	StringVar(*string, string, string, string)
}, pop3 bool) {
	fsys.StringVar(&c.imapURL, "imap", "", "IMAP server: imaps://USER@HOST[:PORT] or imap://USER@HOST[:PORT] (STARTTLS)")
	if pop3 {
		fsys.StringVar(&c.pop3URL, "pop3", "", "POP3 server: pop3s://USER@HOST[:PORT] or pop3://USER@HOST[:PORT] (STLS)")
	}
	fsys.StringVar(&c.tls, "tls", "", "none: allow plaintext (loopback and tests only)")
	fsys.StringVar(&c.caFile, "ca-file", "", "PEM file with an extra CA certificate to trust")
	fsys.StringVar(&c.pw.File, "password-file", "", "read the password from this file")
	fsys.StringVar(&c.pw.Command, "password-command", "", "run this shell command and read the password from its output")
}

// server resolves the flags into a parsed URL, TLS settings and password.
func (c *connFlags) server(ctx context.Context) (account.Server, imapconn.Config, error) {
	raw := c.imapURL
	if raw == "" {
		raw = c.pop3URL
	}
	if raw == "" {
		return account.Server{}, imapconn.Config{}, usageErr("give --imap URL or --pop3 URL")
	}
	if c.imapURL != "" && c.pop3URL != "" {
		return account.Server{}, imapconn.Config{}, usageErr("give --imap or --pop3, not both")
	}
	s, err := account.ParseURL(raw, c.tls)
	if err != nil {
		return s, imapconn.Config{}, usageError{err}
	}
	if (c.imapURL != "") != (s.Protocol == account.IMAP) {
		return s, imapconn.Config{}, usageErr("URL scheme %q does not match the flag", raw)
	}
	tc, err := account.TLSConfig(s.Host, c.caFile)
	if err != nil {
		return s, imapconn.Config{}, usageError{err}
	}
	pw, err := c.pw.Password(ctx)
	if err != nil {
		return s, imapconn.Config{}, usageError{err}
	}
	cfg := imapconn.Config{Addr: s.Addr, TLS: imapconn.TLSMode(s.TLS), TLSConfig: tc, User: s.User, Password: pw}
	return s, cfg, nil
}

// summary is the --json output of backup (documented in README.md).
type summary struct {
	Command     string    `json:"command"`
	Account     string    `json:"account"`
	Archive     string    `json:"archive"`
	Run         int64     `json:"run"`
	Outcome     string    `json:"outcome"`
	Started     time.Time `json:"started"`
	Seconds     float64   `json:"seconds"`
	Folders     int       `json:"folders"`
	Unchanged   int       `json:"unchanged_folders"`
	Fetched     int       `json:"fetched"`
	Bytes       int64     `json:"bytes"`
	FlagChanges int       `json:"flag_changes"`
	Expunged    int       `json:"expunged"`
	Rekeyed     int       `json:"rekeyed"`
	Deleted     int       `json:"deleted,omitempty"`
	Failures    []string  `json:"failures"`
	Error       string    `json:"error,omitempty"`
}

func cmdBackup(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("backup", stderr)
	var cf connFlags
	var com common
	var dir, format string
	var folders, exclude stringsFlag
	var conns int
	var pf pop3Flags
	cf.register(fs, true)
	com.register(fs)
	pf.register(fs)
	fs.StringVar(&dir, "archive", "", "archive directory (one per account)")
	fs.StringVar(&format, "format", "", "archive format for a new archive: mbox.zst (default), mbox.gz, mbox, maildir")
	fs.Var(&folders, "folder", "back up only folders matching this glob (repeatable)")
	fs.Var(&exclude, "exclude", "skip folders matching this glob (repeatable)")
	fs.IntVar(&conns, "connections", 4, "parallel IMAP connections")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	log := com.logger(stderr)
	fail := func(err error) int {
		fmt.Fprintln(stderr, "mailkeep backup:", err)
		if com.jsonOut {
			writeJSON(stdout, summary{Command: "backup", Archive: dir, Outcome: "failed", Error: err.Error(), Failures: []string{}})
		}
		return exitCode(err)
	}
	if fs.NArg() > 0 {
		return fail(usageErr("unexpected arguments %q", fs.Args()))
	}
	if dir == "" {
		return fail(usageErr("--archive DIR is required"))
	}
	var fmtOpt archive.Format
	if format != "" {
		f, err := archive.ParseFormat(format)
		if err != nil {
			return fail(usageError{err})
		}
		fmtOpt = f
	}
	srv, cfg, err := cf.server(ctx)
	if err != nil {
		return fail(err)
	}
	if srv.Protocol == account.IMAP && pf.any() {
		return fail(usageErr("--delete, --keep-days, --dry-run and --no-uidl are POP3 options"))
	}
	a, err := archive.Open(dir, archive.Options{Format: fmtOpt})
	if err != nil {
		return fail(err)
	}
	defer a.Close()
	if err := checkSource(a, string(srv.Protocol)+":"+srv.User+"@"+srv.Host); err != nil {
		return fail(err)
	}
	start := time.Now()
	run, err := a.Cat.BeginRun("backup", srv.String(), start)
	if err != nil {
		return fail(err)
	}
	bar := progress.New(stderr, "backup", com.quiet)
	var st fetch.Stats
	if srv.Protocol == account.IMAP {
		st, err = imapsrc.Backup(ctx, a, run, imapsrc.Options{
			Account: cfg, Folders: folders, Exclude: exclude, Connections: conns, Logger: log,
			Progress: bar.Add,
		})
	} else {
		st, err = pop3Backup(ctx, stdout, a, run, srv, cfg, pf, log, bar.Add)
	}
	bar.Done()
	sum := summary{Command: "backup", Account: srv.String(), Archive: dir, Run: run, Started: start.UTC(),
		Seconds: time.Since(start).Seconds(), Folders: st.Folders, Unchanged: st.Unchanged, Fetched: st.Fetched, Bytes: st.Bytes,
		FlagChanges: st.FlagChanges, Expunged: st.Expunged, Rekeyed: st.Rekeyed, Deleted: st.Deleted, Failures: []string{}}
	for _, f := range st.Failures {
		sum.Failures = append(sum.Failures, f.Error())
	}
	var code int
	sum.Outcome, sum.Error, code = outcome(ctx, err, len(st.Failures))
	rec := catalog.Run{ID: run, Ended: time.Now(), Outcome: sum.Outcome, Fetched: st.Fetched, Bytes: st.Bytes,
		FlagChanges: st.FlagChanges, Expunged: st.Expunged, Rekeyed: st.Rekeyed, Deleted: st.Deleted, Failed: len(st.Failures), Error: sum.Error}
	if eerr := a.Cat.EndRun(rec); eerr != nil && err == nil {
		err, code = eerr, exitFailed
	}
	printFailures(stderr, "backup", sum.Failures, err)
	if com.jsonOut {
		writeJSON(stdout, sum)
	}
	if !com.quiet || code != exitOK {
		fmt.Fprintf(stderr, "mailkeep backup %s: %s, %d folders (%d unchanged), %d new messages (%.1f MB), %d flag changes, %d expunged, %d failures, %.1fs\n",
			srv, sum.Outcome, sum.Folders, sum.Unchanged, sum.Fetched, float64(sum.Bytes)/1e6, sum.FlagChanges, sum.Expunged, len(sum.Failures), sum.Seconds)
	}
	return code
}

// checkSource refuses to mix two accounts in one archive. An account is
// its protocol, user and host: changing port or TLS mode is fine.
func checkSource(a *archive.Archive, src string) error {
	have, err := a.Cat.Meta("source")
	if err != nil {
		return err
	}
	if have == "" {
		return a.Cat.SetMeta("source", src)
	}
	if have != src {
		return usageErr("archive %s belongs to %s, not %s: use one archive directory per account", a.Dir, have, src)
	}
	return nil
}

func writeJSON(w io.Writer, v any) {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func isLocked(err error) bool { return errors.Is(err, archive.ErrLocked) }
