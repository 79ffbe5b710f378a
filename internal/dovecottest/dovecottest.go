// Package dovecottest runs private Dovecot instances for tests.
//
// Each [Server] is a separate Dovecot master process listening on free
// 127.0.0.1 ports for IMAP, IMAPS, POP3 and POP3S, with its configuration,
// Maildir homes, logs, runtime sockets and a freshly generated self-signed
// certificate under one temporary directory. The system Dovecot service is
// neither needed nor touched.
//
// Tests call [Start], which skips the test when Dovecot is not installed
// (or fails it when the environment variable CI is set). Code without a
// testing.TB, such as TestMain, can use [New] and [Server.Close].
package dovecottest

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/loopback"
)

// ErrNotInstalled is returned (wrapped) by [New] when the dovecot or doveadm
// binary cannot be found.
var ErrNotInstalled = errors.New("dovecottest: dovecot is not installed (run scripts/install-test-deps)")

// Server is a private Dovecot instance (IMAP+POP3, plaintext and implicit
// TLS) on 127.0.0.1, with its config, Maildir homes, logs and certificate
// under one temporary directory. When created by [Start] it is stopped and its
// directory removed by t.Cleanup.
type Server struct {
	// Dir holds everything belonging to the instance.
	Dir string
	// IMAPAddr, IMAPSAddr, POP3Addr and POP3SAddr are "127.0.0.1:port".
	IMAPAddr, IMAPSAddr, POP3Addr, POP3SAddr string
	// CACertFile is the PEM file of the self-signed server certificate
	// (CN localhost, SANs 127.0.0.1 and localhost), usable as a CA file.
	CACertFile string
	// ConfigFile is the dovecot.conf of the instance.
	ConfigFile string

	opt     Options
	logPath string
	uid     int // uid/gid owning homes when running as root, else -1
	gid     int

	mu    sync.Mutex // serialises user creation
	cmd   *exec.Cmd
	done  chan struct{} // closed when cmd has exited
	close sync.Once
	cerr  error
}

// Options configure a [Server]. The zero value (or nil) gives an inbox
// namespace with prefix "" and separator '/'.
type Options struct {
	// NamespacePrefix and Separator configure the inbox namespace: default
	// prefix "" and separator '/'. Restore tests use "INBOX." and '.'.
	NamespacePrefix string
	Separator       rune
	// ExtraConfig is appended verbatim to dovecot.conf.
	ExtraConfig string
	// OAuth2IntrospectionURL, when set, adds an oauth2 passdb for the SASL
	// mechanisms XOAUTH2 and OAUTHBEARER that validates every bearer token
	// by POSTing "token=<token>" (form-encoded) to this URL (RFC 7662
	// style). The endpoint must answer 200 with a JSON object holding
	// "active": "true" (or true) and "username" equal to the user logging
	// in; anything else fails the login. Password logins (PLAIN, LOGIN)
	// keep using the per-user passwd-files.
	OAuth2IntrospectionURL string
}

// CyrusLike returns Options for the personal namespace Cyrus IMAP and
// Courier IMAP have by default: prefix "INBOX." and separator '.', so that
// every folder but INBOX is a child of INBOX ("INBOX.Sent").
func CyrusLike() *Options {
	return &Options{NamespacePrefix: "INBOX.", Separator: '.'}
}

// Installed reports whether the dovecot and doveadm binaries are available.
func Installed() error {
	for _, bin := range []string{"dovecot", "doveadm"} {
		if _, err := lookPath(bin); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrNotInstalled, bin, err)
		}
	}
	return nil
}

// lookPath finds bin in PATH or, failing that, in the sbin directories that
// are often missing from a non-root PATH.
func lookPath(bin string) (string, error) {
	p, err := exec.LookPath(bin)
	if err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin", "/sbin", "/usr/local/sbin"} {
		cand := filepath.Join(dir, bin)
		if fi, serr := os.Stat(cand); serr == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return cand, nil
		}
	}
	return "", err
}

// Start starts a Dovecot and registers its shutdown with t.Cleanup. If
// dovecot is not installed the test is skipped when the environment variable
// CI is empty and fails when CI is set. Any other failure fails the test.
func Start(t testing.TB, opt *Options) *Server {
	t.Helper()
	if err := Installed(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	s, err := New(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("dovecottest: stopping %s: %v", s.Dir, err)
		}
	})
	return s
}

// New starts a Dovecot without a testing.TB (for TestMain). The caller must
// call [Server.Close]. The error wraps [ErrNotInstalled] when Dovecot is
// missing.
func New(opt *Options) (*Server, error) {
	if err := Installed(); err != nil {
		return nil, err
	}
	s := &Server{uid: -1, gid: -1}
	if opt != nil {
		s.opt = *opt
	}
	if s.opt.Separator == 0 {
		s.opt.Separator = '/'
	}
	dir, err := mkdirShort()
	if err != nil {
		return nil, err
	}
	s.Dir = dir
	s.ConfigFile = filepath.Join(dir, "dovecot.conf")
	s.CACertFile = filepath.Join(dir, "cert.pem")
	s.logPath = filepath.Join(dir, "log", "dovecot.log")
	if err := s.prepare(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	// A port picked by listening on :0 may be taken by someone else before
	// Dovecot binds it; retry with fresh ports.
	const attempts = 5
	for i := 1; ; i++ {
		err = s.launch()
		if err == nil {
			return s, nil
		}
		if i == attempts || !errors.Is(err, errAddrInUse) {
			os.RemoveAll(dir)
			return nil, err
		}
	}
}

// mkdirShort creates the instance directory. Dovecot puts unix sockets under
// base_dir, whose paths are limited to about 108 bytes, so the directory is
// created directly under a short temporary directory.
func mkdirShort() (string, error) {
	parent := os.TempDir()
	if len(parent) > 40 {
		parent = "/tmp"
	}
	dir, err := os.MkdirTemp(parent, "dv")
	if err != nil {
		return "", fmt.Errorf("dovecottest: creating instance directory: %w", err)
	}
	// Dovecot's unprivileged processes must be able to traverse it.
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("dovecottest: %w", err)
	}
	return dir, nil
}

// prepare creates the directory layout (users.d holds one passwd-file per
// user) and the certificate.
func (s *Server) prepare() error {
	for _, sub := range []string{"run", "state", "log", "home", "users.d"} {
		if err := os.Mkdir(filepath.Join(s.Dir, sub), 0o755); err != nil {
			return fmt.Errorf("dovecottest: %w", err)
		}
	}
	if err := writeCert(s.CACertFile, filepath.Join(s.Dir, "key.pem")); err != nil {
		return err
	}
	if err := s.writeOAuth2Conf(); err != nil {
		return err
	}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("dovecot")
		if err != nil {
			return fmt.Errorf("dovecottest: running as root needs the dovecot user: %w", err)
		}
		s.uid, _ = strconv.Atoi(u.Uid)
		s.gid, _ = strconv.Atoi(u.Gid)
		if err := os.Chown(filepath.Join(s.Dir, "home"), s.uid, s.gid); err != nil {
			return fmt.Errorf("dovecottest: %w", err)
		}
	}
	return nil
}

// writeCert writes the server's self-signed certificate and key.
func writeCert(certFile, keyFile string) error {
	if err := loopback.WriteCert(certFile, keyFile, "mailkeep dovecottest"); err != nil {
		return fmt.Errorf("dovecottest: %w", err)
	}
	return nil
}

var errAddrInUse = errors.New("address already in use")

// pickPorts is freePorts; tests replace it to provoke a port collision.
var pickPorts = freePorts

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment ago.
func freePorts(n int) ([]int, error) {
	ports, err := loopback.FreePorts(n)
	if err != nil {
		return nil, fmt.Errorf("dovecottest: %w", err)
	}
	return ports, nil
}

// launch writes the configuration with fresh ports, starts the master in the
// foreground as a child and waits until IMAP accepts connections.
func (s *Server) launch() error {
	ports, err := pickPorts(4)
	if err != nil {
		return err
	}
	addr := func(p int) string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p)) }
	s.IMAPAddr, s.IMAPSAddr, s.POP3Addr, s.POP3SAddr = addr(ports[0]), addr(ports[1]), addr(ports[2]), addr(ports[3])
	if err := os.WriteFile(s.ConfigFile, []byte(s.config(ports)), 0o644); err != nil {
		return fmt.Errorf("dovecottest: writing %s: %w", s.ConfigFile, err)
	}
	// Start from an empty log so that failures show only this attempt.
	if err := os.WriteFile(s.logPath, nil, 0o644); err != nil {
		return fmt.Errorf("dovecottest: %w", err)
	}
	bin, err := lookPath("dovecot")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	var out bytes.Buffer
	cmd := exec.Command(bin, "-F", "-c", s.ConfigFile)
	cmd.Dir = s.Dir
	cmd.Stdout = &syncWriter{w: &out}
	cmd.Stderr = cmd.Stdout
	// Own process group, so that Close can kill Dovecot with all its
	// children; Pdeathsig stops it if the test binary dies without cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dovecottest: starting dovecot: %w", err)
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
			msg := fmt.Sprintf("dovecottest: dovecot exited during startup (%v): %s\n%s", waitErr, out.String(), s.Log())
			if strings.Contains(msg, "Address already in use") || strings.Contains(msg, "Address in use") {
				return fmt.Errorf("%w: %s", errAddrInUse, msg)
			}
			return errors.New(msg)
		default:
		}
		if s.ready() {
			s.cmd, s.done = cmd, done
			return nil
		}
		if time.Now().After(deadline) {
			// SIGTERM first: the log process flushes what it holds.
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-done:
			case <-time.After(3 * time.Second):
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
			return fmt.Errorf("dovecottest: dovecot did not accept IMAP connections on %s within 15s: %s\n%s", s.IMAPAddr, out.String(), s.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// ready reports whether every listener accepts connections and IMAP greets.
func (s *Server) ready() bool {
	for _, a := range []string{s.IMAPSAddr, s.POP3Addr, s.POP3SAddr} {
		c, err := net.DialTimeout("tcp", a, time.Second)
		if err != nil {
			return false
		}
		c.Close()
	}
	c, err := net.DialTimeout("tcp", s.IMAPAddr, time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 5)
	n, _ := c.Read(buf)
	return n >= 4 && string(buf[:4]) == "* OK"
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}

// config returns dovecot.conf for the given IMAP, IMAPS, POP3, POP3S ports.
func (s *Server) config(ports []int) string {
	userName, groupName := "dovecot", "dovecot"
	if s.uid < 0 {
		userName, groupName = currentUserGroup()
	}
	var b strings.Builder
	fmt.Fprintf(&b, `# Generated by mailkeep internal/dovecottest.
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = %[1]s/log/dovecot.log
info_log_path = %[1]s/log/dovecot.log
debug_log_path = %[1]s/log/dovecot.log
protocols = imap pop3
listen = 127.0.0.1
shutdown_clients = yes
ssl = yes
ssl_cert = <%[1]s/cert.pem
ssl_key = <%[1]s/key.pem
disable_plaintext_auth = no
auth_mechanisms = plain login%[10]s
auth_cache_size = 0
auth_verbose = yes
passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%%u %[1]s/users.d/%%u%[11]s
}
userdb {
  driver = static
  args = uid=%[2]s gid=%[3]s home=%[1]s/home/%%u
}
mail_location = maildir:~/Maildir
mail_privileged_group =
first_valid_uid = 0
first_valid_gid = 0
namespace inbox {
  inbox = yes
  prefix = %[4]s
  separator = %[5]c
}
pop3_uidl_format = %%08Xu%%08Xv
mail_max_userip_connections = 100
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = %[6]d
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = %[7]d
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = %[8]d
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = %[9]d
    ssl = yes
  }
}
`, s.Dir, userName, groupName, s.opt.NamespacePrefix, s.opt.Separator, ports[0], ports[1], ports[2], ports[3], s.oauthMechs(), s.passwdMechs())
	if s.opt.OAuth2IntrospectionURL != "" {
		fmt.Fprintf(&b, "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n  args = %s\n}\n", s.oauth2ConfFile())
	}
	if s.uid < 0 {
		// Rootless Dovecot: no chroot, all processes run as us.
		b.WriteString("service anvil {\n  chroot =\n}\nservice imap-login {\n  chroot =\n}\nservice pop3-login {\n  chroot =\n}\n")
		fmt.Fprintf(&b, "default_login_user = %s\ndefault_internal_user = %s\ndefault_internal_group = %s\n", userName, userName, groupName)
	}
	if s.opt.ExtraConfig != "" {
		b.WriteString(s.opt.ExtraConfig)
		b.WriteString("\n")
	}
	return b.String()
}

func (s *Server) oauthMechs() string {
	if s.opt.OAuth2IntrospectionURL == "" {
		return ""
	}
	return " xoauth2 oauthbearer"
}

// passwdMechs keeps bearer tokens away from the users file when the oauth2
// passdb is configured.
func (s *Server) passwdMechs() string {
	if s.opt.OAuth2IntrospectionURL == "" {
		return ""
	}
	return "\n  mechanisms = plain login"
}

func (s *Server) oauth2ConfFile() string { return filepath.Join(s.Dir, "dovecot-oauth2.conf.ext") }

// writeOAuth2Conf writes the oauth2 passdb's settings (Dovecot 2.3).
func (s *Server) writeOAuth2Conf() error {
	if s.opt.OAuth2IntrospectionURL == "" {
		return nil
	}
	conf := fmt.Sprintf(`introspection_url = %s
introspection_mode = post
force_introspection = yes
username_attribute = username
active_attribute = active
active_value = true
timeout_msecs = 10000
`, s.opt.OAuth2IntrospectionURL)
	if err := os.WriteFile(s.oauth2ConfFile(), []byte(conf), 0o644); err != nil {
		return fmt.Errorf("dovecottest: %w", err)
	}
	return nil
}

func currentUserGroup() (string, string) {
	u, err := user.Current()
	if err != nil {
		return strconv.Itoa(os.Getuid()), strconv.Itoa(os.Getgid())
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		return u.Username, u.Gid
	}
	return u.Username, g.Name
}

// Close stops Dovecot and removes Dir. It is safe to call more than once.
//
// The master gets SIGTERM; as a clean Dovecot shutdown takes about a second
// (the master waits for its children), the whole process group is killed
// if it has not exited after 200 ms. Tests are over when Close runs, so a
// graceful shutdown buys nothing.
func (s *Server) Close() error {
	s.close.Do(func() {
		if s.cmd != nil {
			s.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-s.done:
			case <-time.After(200 * time.Millisecond):
				// The master is not reaped yet, so its pid still names
				// our process group.
				syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
				<-s.done
			}
		}
		if err := os.RemoveAll(s.Dir); err != nil && s.cerr == nil {
			s.cerr = fmt.Errorf("dovecottest: %w", err)
		}
	})
	return s.cerr
}

// AddUser adds a user with a plaintext password (passwd-file) and creates its
// home and empty Maildir. It fails the test on error.
func (s *Server) AddUser(t testing.TB, user, pass string) {
	t.Helper()
	if err := s.CreateUser(user, pass); err != nil {
		t.Fatal(err)
	}
}

// CreateUser is [Server.AddUser] without a testing.TB.
func (s *Server) CreateUser(user, pass string) error {
	if user == "" || strings.ContainsAny(user, ":/\n\r\x00") || user == "." || user == ".." {
		return fmt.Errorf("dovecottest: invalid user name %q", user)
	}
	if strings.ContainsAny(pass, ":\n\r\x00") {
		return fmt.Errorf("dovecottest: password of user %q contains ':' or a line break", user)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	home := filepath.Join(s.Dir, "home", user)
	for _, d := range []string{home, filepath.Join(home, "Maildir"), filepath.Join(home, "Maildir", "cur"), filepath.Join(home, "Maildir", "new"), filepath.Join(home, "Maildir", "tmp")} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("dovecottest: adding user %q: %w", user, err)
		}
		if s.uid >= 0 {
			if err := os.Chown(d, s.uid, s.gid); err != nil {
				return fmt.Errorf("dovecottest: adding user %q: %w", user, err)
			}
		}
	}
	// A file per user: Dovecot looks at a passwd-file's mtime at most
	// once a second, so a user appended to one shared file in the second
	// of an earlier lookup was unknown until the next second (a LOGIN
	// refused under -race). A new file is read at its first lookup.
	p := filepath.Join(s.Dir, "users.d", user)
	if err := os.WriteFile(p+".tmp", fmt.Appendf(nil, "%s:{PLAIN}%s\n", user, pass), 0o644); err != nil {
		return fmt.Errorf("dovecottest: adding user %q: %w", user, err)
	}
	if err := os.Rename(p+".tmp", p); err != nil {
		return fmt.Errorf("dovecottest: adding user %q: %w", user, err)
	}
	return nil
}

// Doveadm runs doveadm -c ConfigFile with args, failing the test (with
// stderr and the Dovecot log) on error. It returns stdout.
func (s *Server) Doveadm(t testing.TB, args ...string) string {
	t.Helper()
	out, err := s.RunDoveadm(args...)
	if err != nil {
		t.Fatalf("%v\ndovecot log:\n%s", err, s.Log())
	}
	return out
}

// RunDoveadm is [Server.Doveadm] without a testing.TB.
func (s *Server) RunDoveadm(args ...string) (string, error) {
	bin, err := lookPath("doveadm")
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNotInstalled, err)
	}
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(bin, append([]string{"-c", s.ConfigFile}, args...)...)
	cmd.Dir = s.Dir
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("dovecottest: doveadm %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// Maildir returns the path of the user's Maildir on disk.
func (s *Server) Maildir(user string) string {
	return filepath.Join(s.Dir, "home", user, "Maildir")
}

// Log returns the content of the Dovecot log, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", s.logPath, err)
	}
	return string(b)
}
