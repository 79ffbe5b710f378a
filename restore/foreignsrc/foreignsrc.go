// Package foreignsrc presents mail that mailkeep did not archive (an mbox
// file from Google Takeout or Thunderbird, or a Maildir) to the restore
// engine, as one folder.
//
// mbox files are read with github.com/emersion/go-mbox, which reads mboxo
// and normalises what it reads: line endings become CRLF (as IMAP wants),
// one '>' is removed from lines starting ">From ", and the blank line that
// separates messages is dropped. INTERNALDATE comes from the Date: header,
// else from the date of the message's "From " line, else it is the time of
// the restore; flags from the Status:/X-Status: headers
// that mutt and Thunderbird write (R: \Seen, A: \Answered, F: \Flagged,
// T: \Draft). Maildir messages are restored byte for byte with the flags of
// their ":2," suffix and their file mtime as INTERNALDATE.
package foreignsrc

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-mbox"

	"github.com/mailkeep/mailkeep/archive/maildir"
	"github.com/mailkeep/mailkeep/restore"
)

// Mbox is a foreign mbox file restored into one folder.
type Mbox struct {
	Path   string
	Folder string // destination folder name, '/'-delimited
	TmpDir string // where each message is spooled while it is restored ("" = os.TempDir)
}

// Folders implements restore.Source.
func (s *Mbox) Folders(ctx context.Context) ([]restore.Folder, error) {
	return []restore.Folder{{Name: s.Folder, Delim: '/'}}, nil
}

// Messages implements restore.Source. Each message is spooled to a
// temporary file (memory stays bounded), hashed, then handed to fn.
func (s *Mbox) Messages(ctx context.Context, folder restore.Folder, fn func(restore.Message) error) error {
	f, err := os.Open(s.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	spool, err := os.CreateTemp(s.TmpDir, "mailkeep-spool-")
	if err != nil {
		return err
	}
	defer os.Remove(spool.Name())
	defer spool.Close()
	// A second reader of the same file walks its "From " lines in step
	// with go-mbox (which drops them) for their dates.
	f2, err := os.Open(s.Path)
	if err != nil {
		return err
	}
	defer f2.Close()
	froms := &fromLines{r: bufio.NewReaderSize(f2, 64<<10)}
	r := mbox.NewReader(bufio.NewReaderSize(f, 256<<10))
	for i := 1; ; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		mr, err := r.NextMessage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: message %d: %w", s.Path, i, err)
		}
		if err := spool.Truncate(0); err != nil {
			return err
		}
		if _, err := spool.Seek(0, io.SeekStart); err != nil {
			return err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(spool, h), mr)
		if err != nil {
			return fmt.Errorf("%s: message %d: %w", s.Path, i, err)
		}
		hdr := make([]byte, min(n, 64<<10))
		if _, err := spool.ReadAt(hdr, 0); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		msgID, date, flags := headerFacts(hdr)
		if fromDate, ok := froms.next(); ok && !hasDate(hdr) {
			date = fromDate
		}
		sum := hex.EncodeToString(h.Sum(nil))
		err = fn(restore.Message{
			Key:          fmt.Sprintf("mbox:%s:%d:%s", filepath.Base(s.Path), i, sum[:16]),
			Flags:        flags,
			InternalDate: date,
			Size:         n,
			SHA256:       sum,
			MessageID:    msgID,
			Open: func() (io.ReadCloser, error) {
				return io.NopCloser(io.NewSectionReader(spool, 0, n)), nil
			},
		})
		if err != nil {
			return err
		}
	}
}

// headerFacts takes Message-ID, Date and mbox status flags from a header.
func headerFacts(b []byte) (msgID string, date time.Time, flags []string) {
	m, err := mail.ReadMessage(strings.NewReader(string(b)))
	date = time.Now().Truncate(time.Second)
	if err != nil {
		return "", date, nil
	}
	msgID = strings.Trim(strings.TrimSpace(m.Header.Get("Message-Id")), "<>")
	if d, err := m.Header.Date(); err == nil {
		date = d
	}
	status := m.Header.Get("Status") + m.Header.Get("X-Status")
	for _, c := range []struct {
		letter byte
		flag   string
	}{{'R', `\Seen`}, {'A', `\Answered`}, {'F', `\Flagged`}, {'T', `\Draft`}} {
		if strings.IndexByte(status, c.letter) >= 0 {
			flags = append(flags, c.flag)
		}
	}
	return msgID, date, flags
}

// Maildir is a foreign Maildir folder restored into one folder.
type Maildir struct {
	Path   string
	Folder string
}

// Folders implements restore.Source.
func (s *Maildir) Folders(ctx context.Context) ([]restore.Folder, error) {
	return []restore.Folder{{Name: s.Folder, Delim: '/'}}, nil
}

// Messages implements restore.Source.
func (s *Maildir) Messages(ctx context.Context, folder restore.Folder, fn func(restore.Message) error) error {
	var names []string
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(s.Path, sub))
		if err != nil {
			return fmt.Errorf("maildir %s: %w", s.Path, err)
		}
		for _, e := range ents {
			if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
				names = append(names, filepath.Join(sub, e.Name()))
			}
		}
	}
	sort.Strings(names)
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := filepath.Join(s.Path, name)
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		h := sha256.New()
		br := bufio.NewReader(io.TeeReader(f, h))
		hdr, _ := br.Peek(64 << 10)
		msgID, _, _ := headerFacts(hdr)
		_, err = io.Copy(io.Discard, br)
		f.Close()
		if err != nil {
			return fmt.Errorf("maildir %s: %w", path, err)
		}
		var flags []string
		if _, info, ok := strings.Cut(filepath.Base(name), ":2,"); ok {
			flags = maildir.ParseFlagLetters(info)
		}
		err = fn(restore.Message{
			Key:          "maildir:" + maildir.KeyOf(filepath.Base(name)),
			Flags:        flags,
			InternalDate: st.ModTime().Truncate(time.Second),
			Size:         st.Size(),
			SHA256:       hex.EncodeToString(h.Sum(nil)),
			MessageID:    msgID,
			Open:         func() (io.ReadCloser, error) { return os.Open(path) },
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// hasDate reports whether a header block has a Date: header that parses.
func hasDate(hdr []byte) bool {
	m, err := mail.ReadMessage(strings.NewReader(string(hdr)))
	if err != nil {
		return false
	}
	_, err = m.Header.Date()
	return err == nil
}

// fromLines yields the date of each "From " separator line of an mbox
// file, in order. Its idea of a separator is go-mbox's: a line that starts
// with "From " (the first message may follow blank lines).
type fromLines struct {
	r *bufio.Reader
}

// next returns the date of the next "From " line, and false when the line
// has no date it understands (or there is none).
func (f *fromLines) next() (time.Time, bool) {
	line, ok := f.nextLine()
	if !ok {
		return time.Time{}, false
	}
	return parseFromDate(line)
}

// nextLine returns the next "From " line (its first 256 bytes), false at
// the end of the file.
func (f *fromLines) nextLine() (string, bool) {
	for {
		line, err := f.line()
		if strings.HasPrefix(line, "From ") {
			return line, true
		}
		if err != nil {
			return "", false
		}
	}
}

// line reads one line and returns at most its first 256 bytes (a
// separator's date is near its start; the rest is discarded).
func (f *fromLines) line() (string, error) {
	var head []byte
	for {
		b, err := f.r.ReadSlice('\n')
		if len(head) < 256 {
			head = append(head, b[:min(len(b), 256-len(head))]...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return string(head), err
	}
}

// fromLayouts are the date forms of "From " lines: asctime (mutt,
// procmail, Thunderbird), with a numeric zone before the year (Google
// Takeout) or after it, or a zone name.
var fromLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04 2006",
}

// parseFromDate parses the date of "From SENDER DATE". Dates without a
// zone are UTC, as mbox writers use them.
func parseFromDate(line string) (time.Time, bool) {
	fields := strings.Fields(strings.TrimRight(line, "\r\n"))
	// fields[0] is "From", fields[1] the sender (or "-"); the date is the rest.
	for start := 2; start <= 3 && start < len(fields); start++ {
		d := strings.Join(fields[start:], " ")
		for _, l := range fromLayouts {
			if t, err := time.Parse(l, d); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}
