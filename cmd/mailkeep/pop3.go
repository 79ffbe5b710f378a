package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/fetch/pop3src"
	"github.com/mailkeep/mailkeep/internal/account"
	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// pop3Flags are backup's POP3-only options.
type pop3Flags struct {
	del      bool
	keepDays int
	dryRun   bool
	noUIDL   bool
}

func (p *pop3Flags) register(fs *flag.FlagSet) {
	fs.BoolVar(&p.del, "delete", false, "POP3: delete messages from the server once archived and verified")
	fs.IntVar(&p.keepDays, "keep-days", 0, "POP3: delete archived messages once they have been archived this many days")
	fs.BoolVar(&p.dryRun, "dry-run", false, "POP3: show what would be deleted, delete nothing")
	fs.BoolVar(&p.noUIDL, "no-uidl", false, "POP3: server lacks UIDL; recognise messages by a checksum of their headers")
}

func (p *pop3Flags) any() bool { return p.del || p.keepDays != 0 || p.dryRun || p.noUIDL }

func pop3Backup(ctx context.Context, stdout io.Writer, prefix string, a *archive.Archive, run int64, srv account.Server, cfg imapconn.Config, pf pop3Flags, log *slog.Logger, prog backupProgress) (fetch.Stats, error) {
	if pf.keepDays < 0 {
		return fetch.Stats{}, usageErr("--keep-days must be positive")
	}
	opt := pop3src.Options{
		Server:   pop3Config(srv, cfg),
		Delete:   pf.del,
		KeepDays: pf.keepDays,
		DryRun:   pf.dryRun,
		NoUIDL:   pf.noUIDL,
		Logger:   log,
		Progress: prog.add,
		Planned:  prog.planned,
		WouldDelete: func(uidl string, m *catalog.Message) {
			fmt.Fprintf(stdout, "%swould delete: uidl %s, %d bytes, %s, from %s, subject %q\n", prefix, uidl, m.Size, m.InternalDate.Format("2006-01-02"), m.Sender, m.Subject)
		},
	}
	return pop3src.Backup(ctx, a, run, opt)
}
