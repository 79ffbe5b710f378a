// Package restore pushes archived mail back to an IMAP server: every
// folder, exact bytes, flags, keywords and INTERNALDATE, resumably and
// idempotently. It reads through the small Source and Progress interfaces,
// so it serves mailkeep archives (package archivesrc) and foreign mbox or
// Maildir files (package foreignsrc) alike.
package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive/layout"
	"github.com/mailkeep/mailkeep/internal/glob"
	"github.com/mailkeep/mailkeep/internal/imapconn"
)

// Message is one message to restore.
type Message struct {
	Key          string // unique and stable within the source; progress is recorded under it
	Flags        []string
	InternalDate time.Time
	Size         int64
	SHA256       string // hex of the exact bytes; checked before APPEND
	MessageID    string
	Open         func() (io.ReadCloser, error)
}

// Folder is one source folder.
type Folder struct {
	Name       string
	Delim      rune
	SpecialUse string // `\Sent`, `\Drafts`, `\Trash`, `\Junk`, `\Archive` or ""
}

// Source is what a restore reads.
type Source interface {
	Folders(ctx context.Context) ([]Folder, error)
	Messages(ctx context.Context, folder Folder, fn func(Message) error) error
}

// Destination names the server account restored to.
type Destination struct{ Server, User string }

// Restored is where a message went.
type Restored struct {
	Folder           string
	UIDValidity, UID uint32 // from APPENDUID (UIDPLUS), else 0
}

// Progress records what was restored where, so a rerun appends nothing twice.
type Progress interface {
	IsRestored(dest Destination, key string) (bool, error)
	MarkRestored(dest Destination, key string, r Restored) error
}

// Event reports one appended message, for a progress display.
type Event struct {
	Folder string
	Bytes  int64
}

// Options configure a restore.
type Options struct {
	Folders, Exclude []string // globs on source folder names written with '/'
	Prefix           string   // destination parent folder, written with '/'
	NoSpecialUse     bool
	DryRun           bool
	Connections      int // default 4
	Logger           *slog.Logger
	Progress         func(Event)
	// DialRaw, when set, opens an extra connection per worker for APPEND
	// alone, pipelined with LITERAL+ when the server offers it.
	DialRaw func(context.Context) (*imapconn.Raw, error)
}

// Stats count what a restore did.
type Stats struct {
	Folders, Created, Appended, Skipped, Damaged, KeywordsDropped int
	Bytes                                                         int64
	Failures                                                      []error
}

// FolderError is a failure of one folder or one message of it.
type FolderError struct {
	Folder string
	Key    string
	Err    error
}

func (e *FolderError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("folder %q: message %s: %v", e.Folder, e.Key, e.Err)
	}
	return fmt.Sprintf("folder %q: %v", e.Folder, e.Err)
}

func (e *FolderError) Unwrap() error { return e.Err }

// ErrDamaged marks a message whose bytes do not match its checksum.
var ErrDamaged = errors.New("archived bytes do not match their SHA-256")

type run struct {
	ctx  context.Context
	dial func(context.Context) (*imapclient.Client, error)
	dest Destination
	src  Source
	prog Progress
	opt  Options
	log  *slog.Logger

	delim    rune
	nsPrefix string
	special  map[string]string // special-use attr (lower case) -> destination folder
	existing map[string]bool

	mu    sync.Mutex
	stats Stats
}

// Run restores src into the server reached through dial (which returns a
// logged-in client).
func Run(ctx context.Context, dial func(context.Context) (*imapclient.Client, error), dest Destination, src Source, prog Progress, opt Options) (Stats, error) {
	if opt.Connections <= 0 {
		opt.Connections = 4
	}
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	r := &run{ctx: ctx, dial: dial, dest: dest, src: src, prog: prog, opt: opt, log: opt.Logger}
	c, err := dial(ctx)
	if err != nil {
		return r.stats, err
	}
	defer c.Close()
	if err := r.discover(c); err != nil {
		return r.stats, err
	}
	folders, err := src.Folders(ctx)
	if err != nil {
		return r.stats, err
	}
	sel := glob.New(opt.Folders, opt.Exclude)
	type job struct {
		f   Folder
		dst string
	}
	var jobs []job
	for _, f := range folders {
		if !sel.Match(layout.Join(layout.Components(f.Name, f.Delim), '/')) {
			continue
		}
		r.stats.Folders++
		dst, err := r.destName(f)
		if err != nil {
			r.fail(f.Name, "", err)
			continue
		}
		if err := r.create(c, dst); err != nil {
			r.fail(f.Name, "", err)
			continue
		}
		jobs = append(jobs, job{f, dst})
	}
	queue := make(chan job)
	var wg sync.WaitGroup
	for i := 0; i < min(opt.Connections, len(jobs)); i++ {
		wg.Add(1)
		first := c
		if i > 0 {
			first = nil
		}
		go func() {
			defer wg.Done()
			cc := first
			var raw *imapconn.Raw
			defer func() {
				if raw != nil {
					raw.Logout()
				}
			}()
			for j := range queue {
				if ctx.Err() != nil {
					continue
				}
				if cc == nil {
					var err error
					if cc, err = dial(ctx); err != nil {
						r.fail(j.f.Name, "", err)
						continue
					}
				}
				if raw == nil && opt.DialRaw != nil && !opt.DryRun {
					if rc, err := opt.DialRaw(ctx); err == nil && rc.Caps["LITERAL+"] {
						raw = rc
					} else if err == nil {
						rc.Logout()
					}
				}
				stop := context.AfterFunc(ctx, func() { cc.Close() })
				err := r.folder(cc, raw, j.f, j.dst)
				stop()
				if err != nil {
					if ctx.Err() == nil {
						r.fail(j.f.Name, "", err)
					}
					go cc.Close()
					cc = nil
					if raw != nil {
						raw.Close()
						raw = nil
					}
				}
			}
			if cc != nil && cc != first {
				cc.Logout().Wait()
				cc.Close()
			}
		}()
	}
	for _, j := range jobs {
		select {
		case queue <- j:
		case <-ctx.Done():
		}
	}
	close(queue)
	wg.Wait()
	if ctx.Err() != nil {
		return r.stats, ctx.Err()
	}
	c.Logout().Wait()
	return r.stats, nil
}

func (r *run) fail(folder, key string, err error) {
	r.log.Error("restore failure", "folder", folder, "message", key, "err", err)
	r.mu.Lock()
	r.stats.Failures = append(r.stats.Failures, &FolderError{Folder: folder, Key: key, Err: err})
	r.mu.Unlock()
}

// discover learns the destination's delimiter, personal namespace, folders
// and special-use folders.
func (r *run) discover(c *imapclient.Client) error {
	r.delim = '/'
	if c.Caps().Has(imap.CapNamespace) || c.Caps().Has(imap.CapIMAP4rev2) {
		ns, err := c.Namespace().Wait()
		if err == nil && len(ns.Personal) > 0 {
			r.nsPrefix, r.delim = ns.Personal[0].Prefix, ns.Personal[0].Delim
		}
	}
	if r.nsPrefix == "" {
		if l, err := c.List("", "", nil).Collect(); err == nil && len(l) > 0 && l[0].Delim != 0 {
			r.delim = l[0].Delim
		}
	}
	opt := &imap.ListOptions{ReturnSpecialUse: c.Caps().Has(imap.CapSpecialUse)}
	list, err := c.List("", "*", opt).Collect()
	if err != nil {
		return fmt.Errorf("LIST: %w", err)
	}
	r.existing = map[string]bool{}
	r.special = map[string]string{}
	for _, l := range list {
		r.existing[l.Mailbox] = true
		for _, a := range l.Attrs {
			switch s := strings.ToLower(string(a)); s {
			case `\sent`, `\drafts`, `\trash`, `\junk`, `\archive`:
				if _, ok := r.special[s]; !ok {
					r.special[s] = l.Mailbox
				}
			}
		}
	}
	return nil
}

var wellKnown = map[string]string{
	"sent": `\sent`, "sent items": `\sent`, "sent messages": `\sent`, "sent mail": `\sent`,
	"drafts": `\drafts`, "draft": `\drafts`,
	"trash": `\trash`, "deleted items": `\trash`, "deleted messages": `\trash`, "bin": `\trash`,
	"junk": `\junk`, "spam": `\junk`, "junk e-mail": `\junk`, "junk email": `\junk`,
	"archive": `\archive`, "archives": `\archive`,
}

// destName maps a source folder onto the destination's namespace.
func (r *run) destName(f Folder) (string, error) {
	comps := layout.Components(f.Name, f.Delim)
	if !r.opt.NoSpecialUse && r.opt.Prefix == "" && len(comps) == 1 {
		su := strings.ToLower(f.SpecialUse)
		if su == "" {
			su = wellKnown[strings.ToLower(comps[0])]
		}
		if d, ok := r.special[su]; ok && su != "" {
			return d, nil
		}
	}
	if r.opt.Prefix != "" {
		comps = append(strings.Split(strings.Trim(r.opt.Prefix, "/"), "/"), comps...)
	}
	for _, c := range comps {
		if r.delim != 0 && strings.ContainsRune(c, r.delim) {
			return "", fmt.Errorf("folder name component %q contains the destination's hierarchy delimiter %q; it cannot be represented (restore it with --prefix into another name, or rename it in the source)", c, r.delim)
		}
	}
	if len(comps) == 1 && comps[0] == "INBOX" {
		return "INBOX", nil
	}
	name := layout.Join(comps, r.delim)
	if r.nsPrefix != "" && !strings.HasPrefix(strings.ToUpper(name), strings.ToUpper(r.nsPrefix)) {
		name = r.nsPrefix + name
	}
	return name, nil
}

// create makes dst unless it exists. Servers that need parents to exist
// first get them created, then dst again.
func (r *run) create(c *imapclient.Client, dst string) error {
	if r.existing[dst] || strings.EqualFold(dst, "INBOX") {
		return nil
	}
	if r.opt.DryRun {
		fmt.Fprintf(dryRunOut, "would create folder %q\n", dst)
		r.count(func(s *Stats) { s.Created++ })
		return nil
	}
	err := r.create1(c, dst)
	if err != nil && r.delim != 0 {
		parts := strings.Split(dst, string(r.delim))
		for i := 1; i < len(parts); i++ {
			p := strings.Join(parts[:i], string(r.delim))
			if !r.existing[p] && p+string(r.delim) != r.nsPrefix && !strings.EqualFold(p, "INBOX") {
				r.create1(c, p) // best effort: it may exist implicitly
			}
		}
		err = r.create1(c, dst)
	}
	return err
}

func (r *run) create1(c *imapclient.Client, name string) error {
	if err := c.Create(name, nil).Wait(); err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
			return fmt.Errorf("CREATE %q: %w", name, err)
		}
	} else {
		r.count(func(s *Stats) { s.Created++ })
	}
	r.existing[name] = true
	return nil
}

// dryRunOut receives dry-run reports (stdout; a variable for tests).
var dryRunOut io.Writer = io.Discard

// SetDryRunOutput sets where --dry-run reports go.
func SetDryRunOutput(w io.Writer) { dryRunOut = w }

type presentKey struct {
	msgID string
	size  int64
	date  int64
}

// folder restores one folder on connection c.
func (r *run) folder(c *imapclient.Client, raw *imapconn.Raw, f Folder, dst string) error {
	var present map[presentKey]int
	var noID map[presentKey][]imap.UID
	allowKw, allowAll := map[string]bool{}, false
	if r.opt.DryRun && !r.existing[dst] {
		allowAll = true // a folder yet to be created: assume it takes keywords
	} else {
		// SELECT, not EXAMINE: a read-only mailbox reports no permanent flags.
		sel, err := c.Select(dst, nil).Wait()
		if err != nil && !r.opt.DryRun {
			return fmt.Errorf("SELECT %q: %w", dst, err)
		}
		if err == nil {
			for _, p := range sel.PermanentFlags {
				if p == imap.FlagWildcard {
					allowAll = true
				}
				allowKw[strings.ToLower(string(p))] = true
			}
			n := r.settle(c, sel.NumMessages)
			if present, noID, err = r.index(c, n); err != nil {
				return err
			}
		}
	}
	dropped := map[string]bool{}
	var pending []*pendingAppend
	wait := func(p *pendingAppend) {
		data, err := p.wait()
		if err != nil {
			r.fail(f.Name, p.key, fmt.Errorf("APPEND to %q: %w", dst, err))
			return
		}
		rd := Restored{Folder: dst}
		if data != nil {
			rd.UIDValidity, rd.UID = data.UIDValidity, uint32(data.UID)
		}
		if err := r.prog.MarkRestored(r.dest, p.key, rd); err != nil {
			r.fail(f.Name, p.key, err)
			return
		}
		r.mu.Lock()
		r.stats.Appended++
		r.stats.Bytes += p.size
		r.mu.Unlock()
		if r.opt.Progress != nil {
			r.opt.Progress(Event{Folder: f.Name, Bytes: p.size})
		}
	}
	flush := func(keep int) {
		for len(pending) > keep {
			wait(pending[0])
			pending = pending[1:]
		}
	}
	err := r.src.Messages(r.ctx, f, func(m Message) error {
		done, err := r.prog.IsRestored(r.dest, m.Key)
		if err != nil {
			return err
		}
		if done {
			r.count(func(s *Stats) { s.Skipped++ })
			return nil
		}
		k := presentKey{m.MessageID, m.Size, m.InternalDate.Unix()}
		if m.MessageID != "" && present[k] > 0 {
			present[k]--
			r.count(func(s *Stats) { s.Skipped++ })
			return r.prog.MarkRestored(r.dest, m.Key, Restored{Folder: dst})
		}
		body, err := r.load(m)
		if err != nil {
			r.fail(f.Name, m.Key, err)
			if errors.Is(err, ErrDamaged) {
				r.count(func(s *Stats) { s.Damaged++ })
			}
			return nil
		}
		if m.MessageID == "" && len(noID[k]) > 0 {
			if same, err := r.sameAsDest(c, noID, k, m.SHA256); err != nil {
				return err
			} else if same {
				r.count(func(s *Stats) { s.Skipped++ })
				return r.prog.MarkRestored(r.dest, m.Key, Restored{Folder: dst})
			}
		}
		var flags []imap.Flag
		for _, fl := range m.Flags {
			switch {
			case strings.EqualFold(fl, `\Recent`):
				continue
			case strings.HasPrefix(fl, `\`):
				flags = append(flags, imap.Flag(fl))
			case allowAll || allowKw[strings.ToLower(fl)]:
				flags = append(flags, imap.Flag(fl))
			default:
				if !dropped[fl] {
					dropped[fl] = true
					r.log.Warn("destination folder refuses keyword; restored without it", "folder", dst, "keyword", fl)
				}
				r.count(func(s *Stats) { s.KeywordsDropped++ })
			}
		}
		if r.opt.DryRun {
			fmt.Fprintf(dryRunOut, "would append to %q: %s, %d bytes, %s, flags %v\n", dst, m.Key, m.Size, m.InternalDate.Format(time.RFC3339), flags)
			r.count(func(s *Stats) { s.Appended++; s.Bytes += m.Size })
			return nil
		}
		p := &pendingAppend{key: m.Key, size: m.Size}
		if raw != nil {
			tag, err := rawAppend(raw, dst, flags, m.InternalDate, m.Size, body)
			if err != nil {
				return fmt.Errorf("APPEND %s to %q: %w", m.Key, dst, err)
			}
			p.wait = func() (*imap.AppendData, error) { return rawWait(raw, tag) }
		} else {
			cmd := c.Append(dst, m.Size, &imap.AppendOptions{Flags: flags, Time: m.InternalDate})
			if err := body.writeTo(cmd); err != nil {
				cmd.Close()
				return fmt.Errorf("APPEND %s to %q: %w", m.Key, dst, err)
			}
			if err := cmd.Close(); err != nil {
				return fmt.Errorf("APPEND %s to %q: %w", m.Key, dst, err)
			}
			p.wait = cmd.Wait
		}
		pending = append(pending, p)
		flush(appendWindow)
		return nil
	})
	flush(0)
	if len(dropped) > 0 {
		var kws []string
		for k := range dropped {
			kws = append(kws, k)
		}
		r.log.Warn("keywords not restored: the destination folder does not allow them (PERMANENTFLAGS)", "folder", dst, "keywords", strings.Join(kws, " "))
	}
	return err
}

// settle waits, for a folder that already holds mail, until its message
// count stops changing: a restore killed with APPENDs in flight leaves the
// server storing them for a moment after the restart, and the
// already-present check must see them. It returns the settled count.
func (r *run) settle(c *imapclient.Client, n uint32) uint32 {
	if n == 0 {
		return 0
	}
	for i := 0; i < 40; i++ {
		time.Sleep(settleDelay)
		if err := c.Noop().Wait(); err != nil {
			return n
		}
		mb := c.Mailbox()
		if mb == nil || mb.NumMessages == n {
			return n
		}
		n = mb.NumMessages
	}
	return n
}

// settleDelay is how long a folder's count must stay put.
var settleDelay = 150 * time.Millisecond

// appendWindow is how many APPENDs may await their OK at once.
const appendWindow = 32

type pendingAppend struct {
	wait func() (*imap.AppendData, error)
	key  string
	size int64
}

// rawAppend sends one APPEND with a LITERAL+ literal, without waiting.
func rawAppend(raw *imapconn.Raw, dst string, flags []imap.Flag, date time.Time, size int64, b *body) (string, error) {
	tag := raw.NextTag()
	fl := make([]string, len(flags))
	for i, f := range flags {
		fl[i] = string(f)
	}
	raw.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	fmt.Fprintf(raw.W, "%s APPEND %s (%s) \"%s\" {%d+}\r\n", tag, imapconn.Mailbox(dst), strings.Join(fl, " "), date.Format("_2-Jan-2006 15:04:05 -0700"), size)
	if err := b.writeTo(raw.W); err != nil {
		return "", err
	}
	if _, err := raw.W.WriteString("\r\n"); err != nil {
		return "", err
	}
	return tag, raw.W.Flush()
}

// rawWait reads the answer to an APPEND sent by rawAppend.
func rawWait(raw *imapconn.Raw, tag string) (*imap.AppendData, error) {
	_, text, err := raw.ReadTagged(tag)
	if err != nil {
		return nil, err
	}
	var d imap.AppendData
	if rest, ok := strings.CutPrefix(text, "[APPENDUID "); ok {
		var uid uint32
		fmt.Sscanf(rest, "%d %d", &d.UIDValidity, &uid)
		d.UID = imap.UID(uid)
	}
	return &d, nil
}

func (r *run) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// body is a message's bytes, checked against its SHA-256: held in memory
// when small, re-read from the source when large.
type body struct {
	m   Message
	buf []byte
}

const smallMessage = 1 << 20

// load reads a message once to check its checksum (and keeps it when small).
func (r *run) load(m Message) (*body, error) {
	rc, err := m.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDamaged, err)
	}
	defer rc.Close()
	h := sha256.New()
	b := &body{m: m}
	var n int64
	if m.Size <= smallMessage {
		var buf bytes.Buffer
		n, err = io.Copy(io.MultiWriter(&buf, h), rc)
		b.buf = buf.Bytes()
	} else {
		n, err = io.Copy(h, rc)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading: %v", ErrDamaged, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); n != m.Size || (m.SHA256 != "" && got != m.SHA256) {
		return nil, fmt.Errorf("%w: %d bytes with SHA-256 %s, catalog says %d bytes, %s", ErrDamaged, n, got, m.Size, m.SHA256)
	}
	return b, nil
}

func (b *body) writeTo(w io.Writer) error {
	if b.buf != nil || b.m.Size == 0 {
		_, err := w.Write(b.buf)
		return err
	}
	rc, err := b.m.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(rc, b.m.Size))
	if err != nil {
		return err
	}
	if n != b.m.Size || (b.m.SHA256 != "" && hex.EncodeToString(h.Sum(nil)) != b.m.SHA256) {
		return fmt.Errorf("%w: changed while restoring", ErrDamaged)
	}
	return nil
}

// index lists what the destination folder already holds.
func (r *run) index(c *imapclient.Client, n uint32) (map[presentKey]int, map[presentKey][]imap.UID, error) {
	present := map[presentKey]int{}
	noID := map[presentKey][]imap.UID{}
	if n == 0 {
		return present, noID, nil
	}
	sec := &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"Message-ID"}, Peek: true}
	msgs, err := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, RFC822Size: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
	if err != nil {
		return nil, nil, fmt.Errorf("listing the destination folder: %w", err)
	}
	for _, m := range msgs {
		id := parseMessageID(m.FindBodySection(sec))
		k := presentKey{id, m.RFC822Size, m.InternalDate.Unix()}
		if id == "" {
			noID[k] = append(noID[k], m.UID)
		} else {
			present[k]++
		}
	}
	return present, noID, nil
}

// sameAsDest reports whether a destination message with key k (no
// Message-ID) has the given SHA-256; a match is used up.
func (r *run) sameAsDest(c *imapclient.Client, noID map[presentKey][]imap.UID, k presentKey, sum string) (bool, error) {
	for i, uid := range noID[k] {
		msgs, err := c.Fetch(imap.UIDSetNum(uid), &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}}}).Collect()
		if err != nil {
			return false, err
		}
		if len(msgs) == 1 && len(msgs[0].BodySection) == 1 {
			h := sha256.Sum256(msgs[0].BodySection[0].Bytes)
			if hex.EncodeToString(h[:]) == sum {
				noID[k] = append(noID[k][:i], noID[k][i+1:]...)
				return true, nil
			}
		}
	}
	return false, nil
}

func parseMessageID(b []byte) string {
	s := string(b)
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	return strings.Trim(strings.TrimSpace(s), "<>")
}
