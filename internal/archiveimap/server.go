// Package archiveimap serves mailkeep archives read-only over IMAP4rev1
// with go-imap v2's imapserver, so that any mail client can browse them
// without a restore ("mailkeep serve").
//
// What a client sees:
//
//   - One archive: its folders at the top. Several: one top-level folder per
//     archive, named after its account, with the archive's folders below.
//     The hierarchy delimiter is always '/'; a source folder's own
//     delimiter is translated.
//   - Messages expunged on the source (and folders deleted there) appear
//     only with IncludeExpunged, under a separate tree "Expunged/..."
//     mirroring the live folders; the live folders never show them.
//   - With AsOf the archive is served as it was at that time, with the
//     selection logic of archive.Selector (shared with restore and
//     export).
//   - UIDVALIDITY and UIDs are the archived ones when a folder's messages
//     all carry a UID under the folder's UIDVALIDITY (IMAP archives).
//     Otherwise (POP3 archives, rows without a UID, mixed UIDVALIDITYs) the
//     UID of a message is its catalog row id, which is stable and grows
//     in storage order, and the UIDVALIDITY is a fixed value derived from
//     the archive, the folder and the view (FNV-1a, never 0).
//   - Flags, keywords, INTERNALDATE and RFC822.SIZE come from the catalog.
//     Every write (STORE, APPEND, EXPUNGE, CREATE, DELETE, RENAME, COPY,
//     MOVE) answers NO: nothing is ever written into an archive, and no
//     flag change is kept, not even for the session.
//
// Archives are opened read-only and their lock is never taken: a backup
// may run meanwhile. A SELECT takes a snapshot of what the catalog holds
// committed at that moment; the bytes of committed messages never change.
//
// Memory: a FETCH of BODY[], BODY[TEXT] and their partial forms streams
// the message from the archive to the client. Only the header of a message
// (bounded by MaxHeader), or for part sections and full-text scans the
// message itself (bounded by MaxBuffered), is held, one message at a time
// per connection; BODYSTRUCTURE counts parts as they stream by. A selected
// folder's catalog rows are held for the session.
package archiveimap

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/catalog"
	"github.com/mailkeep/mailkeep/archive/textindex"
)

// Delim is the hierarchy delimiter the server presents.
const Delim = '/'

// ExpungedRoot is the top-level folder holding expunged messages.
const ExpungedRoot = "Expunged"

// Defaults of Config's bounds.
const (
	DefaultMaxHeader   = 1 << 20
	DefaultMaxBuffered = 64 << 20
	DefaultIdleTimeout = 30 * time.Minute
)

// ErrReadOnly is the answer to every command that would change an archive.
var ErrReadOnly = &imap.Error{
	Type: imap.StatusResponseTypeNo,
	Code: imap.ResponseCodeCannot,
	Text: "mailkeep serve is read-only: archives are never changed",
}

// Source is one archive to serve.
type Source struct {
	// Name is the account name: the top-level folder when several
	// archives are served.
	Name string
	Dir  string
}

// Config configures a Server.
type Config struct {
	Archives        []Source
	IncludeExpunged bool
	AsOf            time.Time
	// Password, when set, is the only password LOGIN accepts (any user
	// name). Empty: any user name and password log in.
	Password string
	// TLS, when set, enables STARTTLS and refuses LOGIN before it.
	TLS *tls.Config
	// MaxHeader bounds the header held for ENVELOPE, BODY[HEADER] and
	// header searches; MaxBuffered bounds a message held for part sections
	// and body scans (larger ones answer NO for those items).
	MaxHeader   int64
	MaxBuffered int64
	// IdleTimeout closes a connection without traffic for that long.
	IdleTimeout time.Duration
	Logger      *slog.Logger
}

type arch struct {
	name string
	a    *archive.Archive
	ix   *textindex.Index // nil without index.db
	live *archive.Selector
	all  *archive.Selector // IncludeExpunged: the live ones and the expunged
}

// Server serves archives over IMAP.
type Server struct {
	cfg   Config
	archs []*arch
	srv   *imapserver.Server
	log   *slog.Logger
	// ctx is Serve's: catalog queries of the sessions end with it
	// (imapserver's Session methods take no context).
	ctx atomic.Pointer[context.Context]
}

// serveCtx is the context the sessions' queries run under: Serve's, or
// Background before Serve (a session cannot exist then).
func (s *Server) serveCtx() context.Context {
	if p := s.ctx.Load(); p != nil {
		return *p
	}
	return context.Background()
}

// New opens the archives (read-only) and prepares a server.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if len(cfg.Archives) == 0 {
		return nil, errors.New("no archive to serve")
	}
	if cfg.MaxHeader <= 0 {
		cfg.MaxHeader = DefaultMaxHeader
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	seen := map[string]bool{}
	for _, src := range cfg.Archives {
		if len(cfg.Archives) > 1 {
			if src.Name == "" || strings.ContainsRune(src.Name, Delim) || seen[src.Name] || strings.EqualFold(src.Name, ExpungedRoot) {
				s.Close()
				return nil, fmt.Errorf("archive %s: account name %q cannot be a top-level folder (empty, duplicate, containing %q or %q)", src.Dir, src.Name, Delim, ExpungedRoot)
			}
			seen[src.Name] = true
		}
		// The synthetic UIDVALIDITY hashes the directory: make it the same
		// however the directory was named on the command line.
		if abs, err := filepath.Abs(src.Dir); err == nil {
			src.Dir = abs
		}
		a, err := archive.Open(src.Dir, archive.Options{ReadOnly: true})
		if err != nil {
			s.Close()
			return nil, err
		}
		ar := &arch{name: src.Name, a: a}
		s.archs = append(s.archs, ar)
		if ar.live, err = a.Selector(ctx, archive.Selection{AsOf: cfg.AsOf}); err != nil {
			s.Close()
			return nil, fmt.Errorf("archive %s: %w", src.Dir, err)
		}
		if ar.all, err = a.Selector(ctx, archive.Selection{AsOf: cfg.AsOf, IncludeExpunged: true}); err != nil {
			s.Close()
			return nil, fmt.Errorf("archive %s: %w", src.Dir, err)
		}
		if textindex.Exists(src.Dir) {
			ix, err := textindex.OpenReadOnly(src.Dir)
			if err != nil {
				s.log.Warn("full-text index unusable: text searches scan the mail", "archive", src.Dir, "err", err)
			} else {
				ar.ix = ix
			}
		}
	}
	caps := imap.CapSet{
		imap.CapIMAP4rev1:   {},
		imap.CapNamespace:   {},
		imap.CapUnselect:    {},
		imap.CapChildren:    {},
		imap.CapSpecialUse:  {},
		imap.CapLiteralPlus: {},
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			ctx, cancel := context.WithCancel(s.serveCtx())
			return &session{s: s, conn: c, ctx: ctx, cancel: cancel}, nil, nil
		},
		Caps:         caps,
		Logger:       slogPrintf{s.log},
		TLSConfig:    cfg.TLS,
		InsecureAuth: cfg.TLS == nil,
	})
	return s, nil
}

type slogPrintf struct{ l *slog.Logger }

func (p slogPrintf) Printf(format string, args ...any) { p.l.Warn(fmt.Sprintf(format, args...)) }

// Serve accepts connections on ln until ctx ends, then closes the listener
// and every connection and returns nil.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.ctx.Store(&ctx)
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			s.srv.Close()
			ln.Close()
		case <-done:
		}
	}()
	err := s.srv.Serve(&timeoutListener{Listener: ln, s: s})
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// Close closes the archives (after Serve returned).
func (s *Server) Close() error {
	var errs []error
	for _, ar := range s.archs {
		if ar.ix != nil {
			errs = append(errs, ar.ix.Close())
		}
		errs = append(errs, ar.a.Close())
	}
	return errors.Join(errs...)
}

// timeoutListener gives every connection an idle timeout.
type timeoutListener struct {
	net.Listener
	s *Server
}

func (l *timeoutListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &timeoutConn{Conn: c, d: l.s.cfg.IdleTimeout}, nil
}

type timeoutConn struct {
	net.Conn
	d time.Duration
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.d))
	return c.Conn.Read(p)
}

func (c *timeoutConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.d))
	return c.Conn.Write(p)
}

// mailbox is one folder as the client sees it.
type mailbox struct {
	name       string // with Delim, as listed
	ar         *arch
	folder     string // catalog name; "" for a container without messages
	expunged   bool   // the Expunged/ view of folder
	specialUse string
	children   bool
}

// mailboxes lists what the client can see, sorted by name.
func (s *Server) mailboxes(ctx context.Context) ([]*mailbox, error) {
	var out []*mailbox
	byName := map[string]*mailbox{}
	add := func(m *mailbox) {
		if old, ok := byName[m.name]; ok {
			if old.folder == "" {
				*old = *m
			}
			return
		}
		byName[m.name] = m
		out = append(out, m)
	}
	for _, ar := range s.archs {
		prefix := ""
		if len(s.archs) > 1 {
			prefix = ar.name + string(Delim)
			add(&mailbox{name: ar.name, ar: ar})
		}
		views := []bool{false}
		if s.cfg.IncludeExpunged {
			views = append(views, true)
		}
		for _, exp := range views {
			src := ar.live
			p := prefix
			if exp {
				src = ar.all
				p = ExpungedRoot + string(Delim) + prefix
				add(&mailbox{name: ExpungedRoot, ar: ar})
				if prefix != "" {
					add(&mailbox{name: ExpungedRoot + string(Delim) + ar.name, ar: ar})
				}
			}
			fl, err := src.Folders(ctx)
			if err != nil {
				return nil, fmt.Errorf("archive %s: %w", ar.a.Dir, err)
			}
			for _, f := range fl {
				comps := []string{f.Name}
				if f.Delim != 0 {
					comps = strings.Split(f.Name, string(f.Delim))
				}
				for i := range comps {
					comps[i] = strings.ReplaceAll(comps[i], string(Delim), "_")
				}
				if !exp && len(s.archs) == 1 && s.cfg.IncludeExpunged && strings.EqualFold(comps[0], ExpungedRoot) {
					comps[0] += "_"
				}
				for i := 1; i < len(comps); i++ {
					add(&mailbox{name: p + strings.Join(comps[:i], string(Delim)), ar: ar})
				}
				su := f.SpecialUse
				if exp {
					su = ""
				}
				add(&mailbox{name: p + strings.Join(comps, string(Delim)), ar: ar, folder: f.Name, expunged: exp, specialUse: su})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	for i, m := range out {
		if i+1 < len(out) && strings.HasPrefix(out[i+1].name, m.name+string(Delim)) {
			m.children = true
		}
	}
	return out, nil
}

func (s *Server) lookup(ctx context.Context, name string) (*mailbox, error) {
	mbs, err := s.mailboxes(ctx)
	if err != nil {
		return nil, err
	}
	for _, m := range mbs {
		if m.name == name || (strings.EqualFold(name, "INBOX") && strings.EqualFold(m.name, "INBOX")) {
			return m, nil
		}
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "no such folder: " + name}
}

// entry is one message of a snapshot.
type entry struct {
	m     *catalog.Message
	uid   imap.UID
	flags []imap.Flag
}

// snapshot is a selected folder as it was when selected.
type snapshot struct {
	mb          *mailbox
	f           *catalog.Folder
	uidValidity uint32
	uidNext     imap.UID
	msgs        []entry
	// mbox archives: the folder's messages in storage order, for cursors
	stored    []storedMsg
	storedIdx map[int64]int
}

// load takes a snapshot of a mailbox.
func (s *Server) load(ctx context.Context, mb *mailbox) (*snapshot, error) {
	if mb.folder == "" {
		return &snapshot{mb: mb, uidValidity: syntheticValidity(mb), uidNext: 1}, nil
	}
	a := mb.ar.a
	f, err := a.Cat.Folder(ctx, mb.folder)
	if err != nil {
		return nil, fmt.Errorf("folder %q: %w", mb.folder, err)
	}
	live, flagsOf, err := mb.ar.live.Select(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("folder %q: %w", mb.folder, err)
	}
	sel := live
	if mb.expunged {
		all, allFlags, err := mb.ar.all.Select(ctx, f)
		if err != nil {
			return nil, fmt.Errorf("folder %q: %w", mb.folder, err)
		}
		isLive := make(map[int64]bool, len(live))
		for _, m := range live {
			isLive[m.ID] = true
		}
		sel = sel[:0:0]
		for _, m := range all {
			if !isLive[m.ID] {
				sel = append(sel, m)
			}
		}
		flagsOf = allFlags
	}
	snap := &snapshot{mb: mb, f: f, msgs: make([]entry, 0, len(sel))}
	if a.Format != archive.Maildir {
		if snap.stored, snap.storedIdx, err = storageOrder(ctx, a.Cat, f); err != nil {
			return nil, fmt.Errorf("folder %q: %w", mb.folder, err)
		}
	}
	archived := f.UIDValidity != 0
	seen := make(map[uint32]bool, len(sel))
	for _, m := range sel {
		if m.UID == 0 || m.UIDValidity != f.UIDValidity || seen[m.UID] {
			archived = false
			break
		}
		seen[m.UID] = true
	}
	for _, m := range sel {
		e := entry{m: m, uid: imap.UID(m.UID)}
		if !archived {
			e.uid = imap.UID(m.ID)
		}
		for _, fl := range flagsOf[m.ID] {
			if strings.EqualFold(fl, `\Recent`) {
				continue
			}
			e.flags = append(e.flags, imap.Flag(fl))
		}
		snap.msgs = append(snap.msgs, e)
	}
	sort.Slice(snap.msgs, func(i, j int) bool { return snap.msgs[i].uid < snap.msgs[j].uid })
	if archived {
		snap.uidValidity = f.UIDValidity
	} else {
		snap.uidValidity = syntheticValidity(mb)
	}
	snap.uidNext = 1
	if n := len(snap.msgs); n > 0 {
		snap.uidNext = snap.msgs[n-1].uid + 1
	}
	if archived && !mb.expunged && imap.UID(f.UIDNext) > snap.uidNext {
		snap.uidNext = imap.UID(f.UIDNext)
	}
	return snap, nil
}

// syntheticValidity is the fixed UIDVALIDITY of a folder whose UIDs are
// catalog row ids.
func syntheticValidity(mb *mailbox) uint32 {
	h := fnv.New32a()
	h.Write([]byte(mb.ar.a.Dir + "\x00" + mb.name))
	if v := h.Sum32(); v != 0 {
		return v
	}
	return 1
}

func (s *Server) checkPassword(pass string) bool {
	if s.cfg.Password == "" {
		return true
	}
	return subtle.ConstantTimeCompare([]byte(pass), []byte(s.cfg.Password)) == 1
}
