// Package netdial opens the network side of every mailkeep server
// connection, IMAP (internal/imapconn) and POP3 (internal/pop3) alike: the
// TCP dial, the one TLS mode type, the TLS handshake and its certificate
// hint, and the one I/O-timeout policy (--timeout).
//
// The policy: while the server owes an answer, every read waits at most
// the timeout for its next byte (a server trickling a byte per interval
// is slow, not dead); with nothing owed, reads have no deadline (an idle
// connection is never ended for being quiet); every write must be
// accepted within the timeout. The TLS handshake is bounded by the
// timeout as a whole. A read or write that runs into the timeout fails
// with an error wrapping ErrTimeout.
package netdial

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// TLSMode is how a connection is secured; IMAP, POP3, the account URLs
// and the config share it.
type TLSMode int

// The TLS modes.
const (
	Implicit TLSMode = iota // imaps:// (993), pop3s:// (995)
	StartTLS                // imap:// (143), pop3:// (110): STARTTLS / STLS required
	None                    // --tls none: plaintext (loopback, tests)
)

func (m TLSMode) String() string {
	switch m {
	case Implicit:
		return "implicit TLS"
	case StartTLS:
		return "STARTTLS"
	case None:
		return "none"
	}
	return fmt.Sprintf("TLSMode(%d)", int(m))
}

// DefaultTimeout is the I/O timeout when none is configured.
const DefaultTimeout = 2 * time.Minute

// Timeout returns d, or DefaultTimeout when d is not positive.
func Timeout(d time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return DefaultTimeout
}

// ErrTimeout is wrapped by the error of a connection whose server sent no
// byte for the timeout while an answer was owed, or accepted none.
var ErrTimeout = errors.New("server did not answer")

// Dial opens a TCP connection to addr (host:port), bounded by ctx and by
// the connect timeout (the I/O timeout, at most 30 s), with TCP
// keep-alives every 30 s. It also returns the TLS settings for addr: a
// clone of tc (nil: system roots) with ServerName set from addr when
// empty.
func Dial(ctx context.Context, addr string, tc *tls.Config, timeout time.Duration) (net.Conn, *tls.Config, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, nil, err
	}
	d := net.Dialer{Timeout: min(30*time.Second, Timeout(timeout)), KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	tc = tc.Clone()
	if tc == nil {
		tc = &tls.Config{}
	}
	if tc.ServerName == "" {
		tc.ServerName = host
	}
	return conn, tc, nil
}

// Handshake secures conn as a TLS client, bounded by ctx and the timeout.
// A certificate that does not verify gets CertHint's advice.
func Handshake(ctx context.Context, conn net.Conn, tc *tls.Config, timeout time.Duration) (*tls.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, Timeout(timeout))
	defer cancel()
	t := tls.Client(conn, tc)
	if err := t.HandshakeContext(ctx); err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil {
			err = fmt.Errorf("%w: TLS handshake not done in %s (%w)", ErrTimeout, Timeout(timeout), err)
		}
		return nil, CertHint(err)
	}
	return t, nil
}

// CertHint adds what to do to a certificate verification error: trust the
// server's CA with --ca-file (never fall back to plaintext).
func CertHint(err error) error {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var cv *tls.CertificateVerificationError
	if errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) || errors.As(err, &cv) {
		return fmt.Errorf("%w (if the server's certificate is signed by a private CA, trust it with --ca-file or ca_file; check the host name)", err)
	}
	return err
}

// ArmRead sets c's read deadline for the next read by the policy: now
// plus the timeout while an answer is owed, none otherwise.
func ArmRead(c net.Conn, owed bool, timeout time.Duration) {
	if owed {
		c.SetReadDeadline(time.Now().Add(Timeout(timeout)))
	} else {
		c.SetReadDeadline(time.Time{})
	}
}

// ArmWrite sets c's write deadline for the next write: now plus the
// timeout.
func ArmWrite(c net.Conn, timeout time.Duration) {
	c.SetWriteDeadline(time.Now().Add(Timeout(timeout)))
}

// IsDeadline reports whether err is a deadline ArmRead or ArmWrite set
// running out.
func IsDeadline(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// Owed wraps a connection whose client reads only when the server owes it
// an answer (POP3: every read follows a command): each Read is armed as
// owed, each Write as a write, and a deadline running out is reported as
// a *TimeoutError. Its own SetDeadline calls are ignored: the policy is
// the timeout's alone.
func Owed(c net.Conn, timeout time.Duration) net.Conn {
	return &owed{Conn: c, timeout: Timeout(timeout)}
}

type owed struct {
	net.Conn
	timeout time.Duration
}

func (o *owed) Read(p []byte) (int, error) {
	ArmRead(o.Conn, true, o.timeout)
	n, err := o.Conn.Read(p)
	if err != nil && IsDeadline(err) {
		err = &TimeoutError{After: o.timeout, Err: err}
	}
	return n, err
}

func (o *owed) Write(p []byte) (int, error) {
	ArmWrite(o.Conn, o.timeout)
	n, err := o.Conn.Write(p)
	if err != nil && IsDeadline(err) {
		err = &TimeoutError{After: o.timeout, Write: true, Err: err}
	}
	return n, err
}

func (o *owed) SetDeadline(time.Time) error      { return nil }
func (o *owed) SetReadDeadline(time.Time) error  { return nil }
func (o *owed) SetWriteDeadline(time.Time) error { return nil }

// TimeoutError is a read or write that ran into the I/O timeout on an
// Owed connection; it wraps ErrTimeout and os.ErrDeadlineExceeded.
type TimeoutError struct {
	After time.Duration
	Write bool
	Err   error
}

func (e *TimeoutError) Error() string {
	if e.Write {
		return fmt.Sprintf("%v: server accepted no byte for %s", ErrTimeout, e.After)
	}
	return fmt.Sprintf("%v: no byte for %s while waiting for its answer", ErrTimeout, e.After)
}

func (e *TimeoutError) Unwrap() []error { return []error{ErrTimeout, e.Err} }

// Timeout and Temporary make it a net.Error timeout.
func (e *TimeoutError) Timeout() bool   { return true }
func (e *TimeoutError) Temporary() bool { return false }
