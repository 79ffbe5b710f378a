package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/verify"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/fetch/imapsrc"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/provlimit"
)

// source is a fetcher as backup, check and verify --server use it: the
// IMAP one (fetch/imapsrc) or the POP3 one (fetch/pop3src). newSource is
// the one place that chooses by the account's protocol.
type source interface {
	backup(ctx context.Context, a *archive.Archive, run int64) (fetch.Stats, error)
	check(ctx context.Context, cat *catalog.Catalog) (fetch.Check, error)
	compare(ctx context.Context, a *archive.Archive, sum *verifySummary, add func(verify.Finding)) error
}

// sourceSettings are what the commands tell a source; each uses its part.
type sourceSettings struct {
	folders, exclude []string // IMAP folder globs
	conns            int
	budget           provlimit.Budget
	noGmail          bool // gmail = false, --gmail=false: no Gmail mode
	pop3             pop3Flags
	log              *slog.Logger
	prog             backupProgress
	stdout           io.Writer // POP3 --dry-run lines
	prefix           string    // POP3 --dry-run lines: "NAME: " in config mode
}

func newSource(srv account.Server, cfg imapconn.Config, s sourceSettings) source {
	if srv.Protocol == account.POP3 {
		return pop3Source{srv: srv, cfg: cfg, s: s}
	}
	return imapSource{cfg: cfg, s: s}
}

type imapSource struct {
	cfg imapconn.Config
	s   sourceSettings
}

func (i imapSource) options() imapsrc.Options {
	return imapsrc.Options{Account: i.cfg, Folders: i.s.folders, Exclude: i.s.exclude, Connections: i.s.conns, Logger: i.s.log}
}

func (i imapSource) backup(ctx context.Context, a *archive.Archive, run int64) (fetch.Stats, error) {
	opt := i.options()
	opt.Progress, opt.Planned, opt.Budget = i.s.prog.add, i.s.prog.planned, i.s.budget
	opt.Gmail = !i.s.noGmail
	return imapsrc.Backup(ctx, a, run, opt)
}

func (i imapSource) check(ctx context.Context, cat *catalog.Catalog) (fetch.Check, error) {
	return imapsrc.Check(ctx, cat, i.options())
}

func (i imapSource) compare(ctx context.Context, a *archive.Archive, sum *verifySummary, add func(verify.Finding)) error {
	return compareIMAP(ctx, a, i.options(), sum, add)
}

type pop3Source struct {
	srv account.Server
	cfg imapconn.Config
	s   sourceSettings
}

func (p pop3Source) backup(ctx context.Context, a *archive.Archive, run int64) (fetch.Stats, error) {
	return pop3Backup(ctx, p.s.stdout, p.s.prefix, a, run, p.srv, p.cfg, p.s.pop3, p.s.log, p.s.prog)
}

func (p pop3Source) check(ctx context.Context, cat *catalog.Catalog) (fetch.Check, error) {
	return pop3src.Check(ctx, cat, p.options())
}

func (p pop3Source) compare(ctx context.Context, a *archive.Archive, sum *verifySummary, add func(verify.Finding)) error {
	return comparePOP3(ctx, a, p.options(), sum, add)
}

func (p pop3Source) options() pop3src.Options {
	return pop3src.Options{Server: pop3Config(p.srv, p.cfg), NoUIDL: p.s.pop3.noUIDL}
}
