package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
)

// lsWindow is how many rows of ls --folder are aligned together.
const lsWindow = 500

func cmdLs(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("ls", stderr)
	var dir, folder string
	var expunged bool
	fs.StringVar(&dir, "archive", "", "archive directory")
	fs.StringVar(&folder, "folder", "", "list this folder's messages")
	fs.BoolVar(&expunged, "expunged", false, "with --folder: include messages expunged on the server")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	err := func() error {
		if dir == "" {
			return usageErr("--archive DIR is required")
		}
		a, err := archive.Open(dir, archive.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer a.Close()
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		defer tw.Flush()
		if folder == "" {
			fl, err := a.Cat.Folders()
			if err != nil {
				return err
			}
			fmt.Fprintln(tw, "FOLDER\tMESSAGES\tEXPUNGED\tMB\tUIDVALIDITY")
			for _, f := range fl {
				n, err := a.Cat.CountStates(f.ID)
				if err != nil {
					return err
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
		f, err := a.Cat.Folder(folder)
		if err != nil {
			return err
		}
		deleted, err := a.Cat.Deleted(f.ID)
		if err != nil {
			return err
		}
		fmt.Fprintln(tw, "UID\tDATE\tFROM\tSUBJECT\tSIZE\tFLAGS")
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
			if gone && !expunged {
				return nil
			}
			id := strconv.FormatUint(uint64(m.UID), 10)
			if m.UIDL != "" {
				id = m.UIDL
			}
			if gone {
				id += "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", id, m.InternalDate.Format("2006-01-02 15:04"), clip(m.Sender, 30), clip(m.Subject, 50), m.Size, catalog.JoinFlags(m.Flags))
			return nil
		})
	}()
	if err != nil {
		fmt.Fprintln(stderr, "mailkeep ls:", err)
		return exitCode(err)
	}
	return exitOK
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

func cmdCat(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("cat", stderr)
	var dir string
	fs.StringVar(&dir, "archive", "", "archive directory")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	err := func() error {
		if dir == "" || fs.NArg() != 2 {
			return usageErr("usage: mailkeep cat --archive DIR FOLDER UID")
		}
		a, err := archive.Open(dir, archive.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer a.Close()
		f, err := a.Cat.Folder(fs.Arg(0))
		if err != nil {
			return err
		}
		var m *catalog.Message
		if uid, perr := strconv.ParseUint(fs.Arg(1), 10, 32); perr == nil {
			m, err = a.Cat.ByUID(f, uint32(uid))
		} else {
			m, err = a.Cat.ByUIDL(f.ID, fs.Arg(1)) // POP3 archives: the UIDL
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
		if _, err := io.Copy(stdout, r); err != nil {
			return &archive.MessageError{Ref: ref, Err: err}
		}
		return nil
	}()
	if err != nil {
		fmt.Fprintln(stderr, "mailkeep cat:", err)
		return exitCode(err)
	}
	return exitOK
}
