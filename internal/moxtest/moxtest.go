// Package moxtest runs private mox instances for tests: a second IMAP server
// implementation (github.com/mjl-/mox, with its own IMAP code and storage),
// so that backups and restores are tried against a server that is neither
// Dovecot nor go-imap's in-process server.
//
// mox is a test tool, never imported by mailkeep: scripts/install-test-deps
// builds the version pinned in tools/mox/go.mod into .tools/bin/mox. The
// binary is found through the environment variable MAILKEEP_MOX, then
// .tools/bin/mox at the root of the repository, then PATH.
//
// Each [Server] is one "mox localserve" process with a generated
// configuration under a temporary directory: IMAP (plaintext, STARTTLS
// offered but not required) and IMAPS on free 127.0.0.1 ports, a generated
// self-signed certificate for 127.0.0.1 and localhost, no SMTP, no HTTP, no
// DNS, no outgoing connections, and one account "mox" (login
// "mox@localhost") with a random password. Its personal namespace is ""
// with delimiter '/', and a new account already holds the folders Inbox
// (listed as "Inbox", not "INBOX"), Archive, Drafts, Junk, Sent and Trash,
// empty.
//
// Tests call [Start], which skips the test when mox is not installed (or
// fails it when the environment variable CI is set).
package moxtest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/loopback"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/imaptest"
)

// ErrNotInstalled is returned (wrapped) by [New] when no mox binary is found.
var ErrNotInstalled = errors.New("moxtest: mox is not installed (run scripts/install-test-deps)")

// Account is the name of the account every [Server] has; User is its login.
const (
	Account = "mox"
	User    = "mox@localhost"
)

// Server is a private mox on 127.0.0.1. When created by [Start] it is stopped
// and its directory removed by t.Cleanup.
type Server struct {
	// Dir holds configuration, certificate, data and log.
	Dir string
	// Addr is the plaintext IMAP listener, TLSAddr the IMAPS one
	// ("127.0.0.1:port").
	Addr, TLSAddr string
	// CACertFile is the PEM file of the self-signed server certificate
	// (CN localhost, SANs 127.0.0.1 and localhost), usable as a CA file.
	CACertFile string
	// User and Password log in to the account.
	User, Password string

	bin     string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	once    sync.Once
	cerr    error
}

// Binary returns the path of the mox binary: $MAILKEEP_MOX, else
// .tools/bin/mox in the repository holding the working directory, else mox
// in PATH. The error wraps [ErrNotInstalled].
func Binary() (string, error) {
	if p := os.Getenv("MAILKEEP_MOX"); p != "" {
		if isExec(p) {
			return p, nil
		}
		return "", fmt.Errorf("%w: MAILKEEP_MOX=%s is not an executable file", ErrNotInstalled, p)
	}
	if wd, err := os.Getwd(); err == nil {
		for dir := wd; ; dir = filepath.Dir(dir) {
			if _, err := os.Stat(filepath.Join(dir, "tools", "mox", "go.mod")); err == nil {
				if p := filepath.Join(dir, ".tools", "bin", "mox"); isExec(p) {
					return p, nil
				}
				break
			}
			if filepath.Dir(dir) == dir {
				break
			}
		}
	}
	p, err := exec.LookPath("mox")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	return p, nil
}

func isExec(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// Start starts a mox and registers its shutdown with t.Cleanup. If mox is not
// installed the test is skipped when the environment variable CI is empty
// and fails when CI is set. Any other failure fails the test.
func Start(t testing.TB) *Server {
	t.Helper()
	if _, err := Binary(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	s, err := New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("moxtest: stopping %s: %v", s.Dir, err)
		}
	})
	return s
}

// New starts a mox without a testing.TB. The caller must call
// [Server.Close].
func New() (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	// The control socket lives in Dir: keep the path short.
	parent := os.TempDir()
	if len(parent) > 40 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "mox")
	if err != nil {
		return nil, fmt.Errorf("moxtest: %w", err)
	}
	pw := make([]byte, 12)
	if _, err := rand.Read(pw); err != nil {
		return nil, fmt.Errorf("moxtest: %w", err)
	}
	s := &Server{
		Dir:        dir,
		CACertFile: filepath.Join(dir, "localhost.crt"),
		User:       User,
		Password:   "pw-" + hex.EncodeToString(pw),
		bin:        bin,
		logPath:    filepath.Join(dir, "mox.log"),
	}
	if err := s.prepare(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port picked by listening on :0 may be taken before mox binds it.
	const attempts = 5
	for i := 1; ; i++ {
		err = s.launch()
		if err == nil {
			break
		}
		if i == attempts || !errors.Is(err, errAddrInUse) {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	if err := s.setPassword(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// domainsConf: one domain, one account, no junk filter and no automatic
// junk flags (which would add $Junk/$NotJunk to appended messages).
const domainsConf = `Domains:
	localhost: nil
Accounts:
	mox:
		Domain: localhost
		Destinations:
			mox@localhost: nil
`

func (s *Server) prepare() error {
	if err := writeCert(s.CACertFile, filepath.Join(s.Dir, "localhost.key")); err != nil {
		return err
	}
	recvid := make([]byte, 16+8)
	if _, err := rand.Read(recvid); err != nil {
		return fmt.Errorf("moxtest: %w", err)
	}
	for name, data := range map[string][]byte{
		"domains.conf":   []byte(domainsConf),
		"receivedid.key": recvid,
	} {
		if err := os.WriteFile(filepath.Join(s.Dir, name), data, 0o600); err != nil {
			return fmt.Errorf("moxtest: %w", err)
		}
	}
	return nil
}

// moxConf returns mox.conf with IMAP on port imap and IMAPS on port imaps.
func moxConf(imap, imaps int) string {
	return fmt.Sprintf(`DataDir: .
LogLevel: info
User: %d
Hostname: localhost
Pedantic: false
TLS:
	CA:
		AdditionalToSystem: false
		CertFiles:
			- localhost.crt
Listeners:
	local:
		IPs:
			- 127.0.0.1
		TLS:
			KeyCerts:
				-
					CertFile: localhost.crt
					KeyFile: localhost.key
		IMAP:
			Enabled: true
			Port: %d
			NoRequireSTARTTLS: true
		IMAPS:
			Enabled: true
			Port: %d
Postmaster:
	Account: mox
	Mailbox: Inbox
`, os.Getuid(), imap, imaps)
}

// writeCert writes the server's self-signed certificate and key.
func writeCert(certFile, keyFile string) error {
	if err := loopback.WriteCert(certFile, keyFile, "mailkeep moxtest"); err != nil {
		return fmt.Errorf("moxtest: %w", err)
	}
	return nil
}

var errAddrInUse = errors.New("address already in use")

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports, err := loopback.FreePorts(n)
	if err != nil {
		return nil, fmt.Errorf("moxtest: %w", err)
	}
	return ports, nil
}

// launch writes mox.conf with fresh ports, starts "mox localserve" and waits
// until both listeners accept connections and IMAP greets.
func (s *Server) launch() error {
	ports, err := freePorts(2)
	if err != nil {
		return err
	}
	s.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	s.TLSAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1]))
	if err := os.WriteFile(filepath.Join(s.Dir, "mox.conf"), []byte(moxConf(ports[0], ports[1])), 0o600); err != nil {
		return fmt.Errorf("moxtest: %w", err)
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("moxtest: %w", err)
	}
	defer logf.Close() // the child keeps its own descriptor
	cmd := exec.Command(s.bin, "localserve", "-dir", s.Dir)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), "HOME="+s.Dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("moxtest: starting %s: %w", s.bin, err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(done)
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-done:
			log := s.Log()
			if strings.Contains(log, "address already in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, log)
			}
			return fmt.Errorf("moxtest: mox exited during startup (%v):\n%s", waitErr, log)
		default:
		}
		if ready(s.Addr, s.TLSAddr) {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
			return fmt.Errorf("moxtest: mox did not accept IMAP connections on %s within 15s:\n%s", s.Addr, s.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func ready(imapAddr, imapsAddr string) bool {
	c, err := net.DialTimeout("tcp", imapsAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	c, err = net.DialTimeout("tcp", imapAddr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 4)
	n, _ := c.Read(buf)
	return n == 4 && string(buf) == "* OK"
}

// setPassword sets the account's password through mox's control socket.
func (s *Server) setPassword() error {
	var out bytes.Buffer
	cmd := exec.Command(s.bin, "-config", filepath.Join(s.Dir, "mox.conf"), "setaccountpassword", Account)
	cmd.Dir = s.Dir
	cmd.Stdin = strings.NewReader(s.Password + "\n")
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("moxtest: setting the password of account %s: %w: %s\n%s", Account, err, out.String(), s.Log())
	}
	return nil
}

// Close stops mox and removes Dir. It is safe to call more than once.
// mox gets SIGTERM and, as it waits up to 3 s for open connections, the
// process group is killed when it has not exited after 200 ms: the test is
// over and the data directory is thrown away.
func (s *Server) Close() error {
	s.once.Do(func() {
		if s.cmd != nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(200 * time.Millisecond):
				syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.done
			}
		}
		if err := os.RemoveAll(s.Dir); err != nil {
			s.cerr = fmt.Errorf("moxtest: %w", err)
		}
	})
	return s.cerr
}

// Dial logs in over plaintext IMAP with go-imap's client (closed by
// t.Cleanup). Use imaptest.Append to put messages in and imaptest.Snapshot
// to read them back.
func (s *Server) Dial(t testing.TB) *imapclient.Client {
	t.Helper()
	return imaptest.Dial(t, s.Addr, s.User, s.Password)
}

// DialTLS is [Server.Dial] over IMAPS, trusting only CACertFile.
func (s *Server) DialTLS(t testing.TB) *imapclient.Client {
	t.Helper()
	return imaptest.DialTLS(t, s.TLSAddr, s.CACertFile, s.User, s.Password)
}

// Log returns mox's log, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	return string(b)
}

// WantBody returns the BODY[] mox serves for a message appended as body:
// every line end becomes CRLF (a bare LF gets its CR); nothing else changes.
func WantBody(body []byte) []byte {
	lf := bytes.ReplaceAll(body, []byte("\r\n"), []byte("\n"))
	return bytes.ReplaceAll(lf, []byte("\n"), []byte("\r\n"))
}

var knownKeywords = map[string]string{
	"$forwarded": "$Forwarded",
	"$junk":      "$Junk",
	"$notjunk":   "$NotJunk",
	"$phishing":  "$Phishing",
	"$mdnsent":   "$MDNSent",
}

// WantFlags returns the FLAGS mox reports for a message appended with flags,
// sorted as imaptest.Msg has them: system flags unchanged, the keywords mox
// knows ($Forwarded, $Junk, $NotJunk, $Phishing, $MDNSent) in their usual
// spelling, every other keyword in lower case.
func WantFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if !strings.HasPrefix(f, `\`) {
			f = strings.ToLower(f)
			if k, ok := knownKeywords[f]; ok {
				f = k
			}
		}
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}
