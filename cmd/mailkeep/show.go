package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode"

	"io/fs"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/textindex"
)

// showMaxText bounds the text show prints of one message.
const showMaxText = 8 << 20

// cmdShow prints one archived message for a person to read.
// showOpts are show's options.
type showOpts struct {
	stdout, stderr io.Writer
	fs             *flag.FlagSet
	cfg            configFlag
	dir, saveDir   string
	raw            bool
}

func cmdShow(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runOptions(ctx, "show", &showOpts{stdout: stdout, stderr: stderr}, args, stderr)
}

func (o *showOpts) register(fs *flag.FlagSet) {
	o.fs = fs
	o.cfg.register(fs)
	fs.StringVar(&o.dir, "archive", "", "archive directory (or give an account NAME from the config file)")
	fs.StringVar(&o.saveDir, "attachments", "", "save the attachments into this directory")
	fs.BoolVar(&o.raw, "raw", false, "print the message as stored (as cat does)")
}

func (o *showOpts) run(ctx context.Context) error {
	pos := o.fs.Args()
	if o.raw {
		if o.saveDir != "" {
			return usageErr("--raw and --attachments do not go together")
		}
		return status(cmdCat(ctx, append([]string{"--archive", o.dir, "--config", o.cfg.path, "--"}, pos...), o.stdout, o.stderr))
	}
	if len(pos) < 2 || len(pos) > 3 {
		return usageErr("usage: mailkeep show --archive DIR | NAME [--attachments DIR] [--raw] FOLDER UID")
	}
	dir, err := readerArchive(&o.cfg, "show", o.dir, pos[:len(pos)-2], o.stderr)
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
		return fmt.Errorf("folder %q: %w", pos[0], err)
	}
	var m *catalog.Message
	if uid, perr := strconv.ParseUint(pos[1], 10, 32); perr == nil {
		m, err = a.Cat.ByUID(ctx, f, uint32(uid))
	} else {
		m, err = a.Cat.ByUIDL(ctx, f.ID, pos[1])
	}
	if err != nil {
		return fmt.Errorf("folder %q message %s: %w", f.Name, pos[1], err)
	}
	return showMessage(a, f, m, o.saveDir, o.stdout, o.stderr)
}

func showMessage(a *archive.Archive, f *catalog.Folder, m *catalog.Message, saveDir string, stdout, stderr io.Writer) error {
	id := archive.RefTo("", f.Name, m).String()
	r, err := a.OpenChecked(m)
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	defer r.Close()
	var save *saver
	// A callback, even one that saves nothing, makes Parse decode the
	// attachments: show lists their decoded sizes.
	opt := textindex.ParseOptions{MaxText: showMaxText, Attachment: func(textindex.Attachment, int, io.Reader) error { return nil }}
	if saveDir != "" {
		if save, err = openSaver(saveDir); err != nil {
			return err
		}
		defer save.close()
		opt.Attachment = save.save
	}
	msg, err := textindex.Parse(r, opt)
	if err == nil {
		err = r.Finish() // Parse may stop before the end
	}
	if err != nil {
		return fmt.Errorf("%s: %w", id, err)
	}
	var b strings.Builder
	field := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, "%-9s %s\n", k+":", printable(v))
		}
	}
	field("From", msg.From)
	field("To", msg.To)
	field("Cc", msg.Cc)
	field("Reply-To", msg.ReplyTo)
	if !msg.Date.IsZero() {
		field("Date", msg.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	}
	field("Subject", msg.Subject)
	flags := catalog.JoinFlags(m.Flags)
	if flags == "" {
		flags = "none"
	}
	key := strconv.FormatUint(uint64(m.UID), 10)
	if m.UIDL != "" {
		key = m.UIDL
	}
	field("Archived", fmt.Sprintf("%s %s, %d bytes, flags %s", shellWord(f.Name), key, m.Size, flags))
	if m.ExpungedRun != 0 {
		b.WriteString("          (expunged on the server; kept in the archive)\n")
	}
	b.WriteString("\n")
	text := strings.TrimRight(msg.Text(), "\r\n \t")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	b.WriteString(printableText(text))
	b.WriteString("\n")
	if msg.Truncated {
		b.WriteString("[... text cut: the message has more than mailkeep show prints]\n")
	}
	if len(msg.Attachments) > 0 {
		b.WriteString("\nAttachments:\n")
		for i, at := range msg.Attachments {
			name := at.Name
			if name == "" {
				name = "(no name)"
			}
			fmt.Fprintf(&b, "  %d. %s  %s  %s\n", i+1, printable(name), at.Type, humanSize(at.Size))
			if save != nil {
				if s, ok := save.saved[i]; ok {
					fmt.Fprintf(&b, "     saved as %s\n", printable(s))
				}
			}
		}
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		return err
	}
	if len(msg.Problems) > 0 {
		fmt.Fprintf(stderr, "mailkeep show: %s: parts that did not parse (shown as far as they parse): %s\n", id, strings.Join(msg.Problems, "; "))
	}
	return nil
}

func humanSize(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d bytes", n)
}

// printable drops what a terminal would act on (control characters, C1
// included) from one line.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// printableText is printable for a body: line breaks and tabs stay.
func printableText(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '\n' || r == '\t' {
			return r
		}
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// saver writes attachments into one directory, never outside it and never
// through a symlink: names are reduced to a base name (textindex.SafeName)
// and created with openat(O_CREAT|O_EXCL|O_NOFOLLOW), so an existing file
// or a planted symlink is never written through: the attachment gets the
// next free name instead.
type saver struct {
	dir   *os.File
	path  string
	saved map[int]string
}

func openSaver(dir string) (*saver, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("--attachments: %w", err)
	}
	d, err := os.OpenFile(dir, os.O_RDONLY|saverDirFlags, 0)
	if err != nil {
		return nil, fmt.Errorf("--attachments: %w", err)
	}
	return &saver{dir: d, path: dir, saved: map[int]string{}}, nil
}

func (s *saver) close() { s.dir.Close() }

func (s *saver) save(a textindex.Attachment, index int, r io.Reader) error {
	base := textindex.SafeName(a.Name, index)
	ext := filepath.Ext(base)
	stem := strings.TrimSuffix(base, ext)
	for n := 1; n < 1000; n++ {
		name := base
		if n > 1 {
			name = fmt.Sprintf("%s (%d)%s", stem, n, ext)
		}
		f, err := s.create(name)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("saving attachment %q into %s: %w", name, s.path, err)
		}
		_, err = io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			s.remove(name)
			return fmt.Errorf("saving attachment %q into %s: %w", name, s.path, err)
		}
		s.saved[index] = filepath.Join(s.path, name)
		return nil
	}
	return fmt.Errorf("saving attachment %q into %s: no free file name", base, s.path)
}
