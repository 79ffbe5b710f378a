package pop3src

import (
	"context"
	"errors"
	"fmt"
	"io"
)

// Server is the POP3 account a backup connects to. internal/pop3's Config
// implements it; cmd/mailkeep passes one.
type Server interface {
	// String names the account (user@host:port) in errors and logs.
	String() string
	// Open connects, secures and logs in, with the I/O timeout and line
	// bound of every mailkeep connection.
	Open(ctx context.Context) (Session, error)
}

// Session is a logged-in POP3 session (internal/pop3's Client).
type Session interface {
	// List is the maildrop (LIST).
	List(ctx context.Context) ([]MsgInfo, error)
	// UIDL maps message numbers to unique ids; ErrNoUIDL when the server
	// has no UIDL.
	UIDL(ctx context.Context) (map[int]string, error)
	// Top returns a message's header and its first lines body lines.
	Top(ctx context.Context, id, lines int) ([]byte, error)
	// Retr streams the messages (dot-unstuffed) to fn, in order.
	Retr(ctx context.Context, ids []int, fn func(id int, r io.Reader) error) error
	// Mismatched lists the messages Retr received at another size than
	// announced (SizeMatches), by message number.
	Mismatched() map[int]*SizeError
	// Dele marks messages deleted; the server deletes them at QUIT.
	Dele(ctx context.Context, ids []int) error
	// Quit ends the session with QUIT (the server applies DELEs).
	Quit(ctx context.Context) error
	// Close drops the connection without QUIT (no DELE takes effect).
	Close() error
}

// MsgInfo is one message of the maildrop.
type MsgInfo struct {
	ID   int
	Size int64
}

// ErrNoUIDL is returned by Session.UIDL when the server does not support it.
var ErrNoUIDL = errors.New("server does not support UIDL")

// SizeError is a message whose received size disagrees with the size the
// server announced beyond SizeMatches' allowance.
type SizeError struct {
	ID        int    // message number in this session
	Announced int64  // octets announced
	Source    string // "LIST" or "RETR" (its "+OK n octets")
	Got       int64  // octets received, dot-unstuffed
	Lines     int64  // line feeds received
}

func (e *SizeError) Error() string {
	return fmt.Sprintf("message %d: received %d octets (%d lines), but %s announced %d: the server sent a different message than it announced (truncated?)", e.ID, e.Got, e.Lines, e.Source, e.Announced)
}

// SizeMatches reports whether got octets, with lfs line feeds among them,
// are the message of announced octets. RFC 1939 sizes count the message
// with CRLF line ends; servers that store mail with LF line ends may
// announce the stored size (Dovecot does with pop3_fast_size_lookups on
// mails whose virtual size is not cached), one octet less per line than
// they send, and a server that sends bare LF lines may announce the CRLF
// size, one octet more per line. A message that does not end with a line
// end gets one from the server before the terminating "." (the client
// keeps it: it belongs to what was sent), up to 2 octets the announced
// size does not count. Exactly that is allowed: got - announced - e is 0,
// 1 or 2, with e one of 0, lfs, -lfs. A truncated message is short by
// more than that unless it is a few octets long.
func SizeMatches(announced, got, lfs int64) bool {
	for _, e := range []int64{0, lfs, -lfs} {
		if d := got - announced - e; d >= 0 && d <= 2 {
			return true
		}
	}
	return false
}

// session is an open POP3 session with the maildrop listed and every
// message identified: the preamble Backup, Check and Compare share.
type session struct {
	c    Session
	acct string
	list []MsgInfo
	ids  map[int]string // message number -> UIDL (or header checksum)
}

// open connects, logs in, lists the maildrop and identifies its messages
// (by UIDL, or with opt.NoUIDL by header checksum). The caller closes
// s.c (Close without QUIT unless it called quit).
func open(ctx context.Context, opt Options) (*session, error) {
	acct := opt.Server.String()
	c, err := opt.Server.Open(ctx)
	if err != nil {
		return nil, err
	}
	list, err := c.List(ctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: LIST: %w", acct, err)
	}
	ids, err := identify(ctx, c, list, opt.NoUIDL)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%s: %w", acct, err)
	}
	return &session{c: c, acct: acct, list: list, ids: ids}, nil
}

// quit ends the session with QUIT.
func (s *session) quit(ctx context.Context) error { return quit(ctx, s.c, s.acct) }
