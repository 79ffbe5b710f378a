package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

// lsWindow is how many rows of ls --folder are aligned together.
const lsWindow = 500

// lsOpts are ls's options.
type lsOpts struct {
	stdout, stderr    io.Writer
	fs                *flag.FlagSet
	cfg               configFlag
	dir, folder       string
	expunged, jsonOut bool
}

func cmdLs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "ls", &lsOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *lsOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory (or give an account NAME from the config file)")
	fs.StringVar(&o.folder, "folder", "", "list the messages of `FOLDER` (INBOX in any case; other names exact, or one case-insensitive match)")
	fs.BoolVar(&o.expunged, "expunged", false, "with --folder: include messages expunged on the server")
	fs.BoolVar(&o.jsonOut, "json", false, "print one JSON object per folder or message")
}

func (o *lsOpts) run(ctx context.Context) error {
	dir, err := readerArchive(&o.cfg, "ls", o.dir, o.fs.Args(), o.stderr)
	if err != nil {
		return err
	}
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer a.Close()
	tw := tabwriter.NewWriter(o.stdout, 0, 4, 2, ' ', 0)
	defer tw.Flush()
	if o.folder == "" {
		fl, err := a.Cat.Folders(ctx)
		if err != nil {
			return err
		}
		if !o.jsonOut {
			fmt.Fprintln(tw, "FOLDER\tMESSAGES\tEXPUNGED\tMB\tUIDVALIDITY")
		}
		for _, f := range fl {
			n, err := a.Cat.CountStates(ctx, f.ID)
			if err != nil {
				return err
			}
			if o.jsonOut {
				if err := writeJSONLine(o.stdout, lsFolderJSON{Folder: f.Name, Messages: n.Visible(), Expunged: n.Expunged, Deleted: n.Deleted, Bytes: n.Bytes, UIDValidity: f.UIDValidity, Gone: f.GoneRun != 0}); err != nil {
					return err
				}
				continue
			}
			name := f.Name
			if f.GoneRun != 0 {
				name += " (gone from server)"
			}
			if n.Deleted > 0 { // POP3 --delete: counted in MESSAGES
				name += fmt.Sprintf(" (%d deleted from server by mailkeep)", n.Deleted)
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%d\n", name, n.Visible(), n.Expunged, float64(n.Bytes)/1e6, f.UIDValidity)
		}
		return nil
	}
	f, err := findFolder(ctx, a.Cat, o.folder)
	if err != nil {
		return err
	}
	deleted, err := a.Cat.Deleted(ctx, f.ID)
	if err != nil {
		return err
	}
	if !o.jsonOut {
		fmt.Fprintln(tw, "UID\tDATE\tFROM\tSUBJECT\tSIZE\tFLAGS")
	}
	rows := 0
	return a.Cat.Each(ctx, f.ID, func(m *catalog.Message) error {
		// Print as the catalog is read: columns are aligned over a
		// window of lsWindow rows, so memory stays bounded and the
		// first lines show at once whatever the folder's size.
		if rows++; rows%lsWindow == 0 {
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		gone := deleted.ExpungedRun(m) != 0 // not: deleted by mailkeep
		if gone && !o.expunged {
			return nil
		}
		id := strconv.FormatUint(uint64(m.UID), 10)
		if m.UIDL != "" {
			id = m.UIDL
		}
		if o.jsonOut {
			j := lsMessageJSON{Folder: f.Name, ID: id, UID: m.UID, UIDL: m.UIDL, Date: m.InternalDate.Format(time.RFC3339), From: m.Sender, Subject: m.Subject, Size: m.Size, Flags: m.Flags, SHA256: m.SHA256, Expunged: gone}
			if j.Flags == nil {
				j.Flags = []string{}
			}
			return writeJSONLine(o.stdout, j)
		}
		if gone {
			id += "*"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", id, m.InternalDate.Format("2006-01-02 15:04"), clip(m.Sender, 30), clip(m.Subject, 50), m.Size, catalog.JoinFlags(m.Flags))
		return nil
	})
}

func clip(s string, n int) string {
	r := []rune(s)
	for i, c := range r {
		if c < 0x20 || c == 0x7f {
			r[i] = ' '
		}
	}
	if len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return string(r)
}

// catOpts are cat's options.
type catOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	cfg            configFlag
	dir            string
}

func cmdCat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "cat", &catOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *catOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory (or give an account NAME from the config file)")
}

func (o *catOpts) run(ctx context.Context) error {
	pos := o.fs.Args()
	if len(pos) < 2 || len(pos) > 3 {
		return usageErr("usage: mailkeep cat --archive DIR | NAME FOLDER UID")
	}
	dir, err := readerArchive(&o.cfg, "cat", o.dir, pos[:len(pos)-2], o.stderr)
	if err != nil {
		return err
	}
	pos = pos[len(pos)-2:]
	a, err := archive.Open(dir, archive.Options{ReadOnly: true})
	if err != nil {
		return err
	}
	defer a.Close()
	f, err := findFolder(ctx, a.Cat, pos[0])
	if err != nil {
		return err
	}
	var m *catalog.Message
	if uid, perr := strconv.ParseUint(pos[1], 10, 32); perr == nil {
		m, err = a.Cat.ByUID(ctx, f, uint32(uid))
	} else {
		m, err = a.Cat.ByUIDL(ctx, f.ID, pos[1]) // POP3 archives: the UIDL
	}
	if err != nil {
		return err
	}
	ref := archive.RefTo("", f.Name, m)
	r, err := a.OpenChecked(m)
	if err != nil {
		return &archive.MessageError{Ref: ref, Err: err}
	}
	defer r.Close()
	// The bytes go out as they are read; a damaged message ends with
	// an error wrapping archive.ErrDamaged (exit 3).
	if _, err := io.Copy(o.stdout, r); err != nil {
		return &archive.MessageError{Ref: ref, Err: err}
	}
	return nil
}
