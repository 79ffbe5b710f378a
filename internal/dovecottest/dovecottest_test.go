package dovecottest_test

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/internal/dovecottest"
)

// pop3Login logs in over POP3 on conn and returns the STAT reply.
func pop3Login(t *testing.T, conn net.Conn, user, pass string) string {
	t.Helper()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(conn)
	line := func() string {
		l, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("pop3: reading: %v", err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	cmd := func(c string) string {
		fmt.Fprintf(conn, "%s\r\n", c)
		return line()
	}
	if g := line(); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("pop3 greeting = %q", g)
	}
	if r := cmd("USER " + user); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("pop3 USER = %q", r)
	}
	if r := cmd("PASS " + pass); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("pop3 PASS = %q", r)
	}
	stat := cmd("STAT")
	cmd("QUIT")
	return stat
}

func TestServer(t *testing.T) {
	t.Parallel()
	s := dovecottest.Start(t, nil)
	s.AddUser(t, "alice", "secret pass")
	if len(s.Dir) > 40 {
		t.Errorf("Dir %q is too long for unix sockets under it", s.Dir)
	}
	if fi, err := os.Stat(s.Maildir("alice")); err != nil || !fi.IsDir() {
		t.Fatalf("Maildir(alice): %v", err)
	}

	// Plaintext IMAP with LOGIN, then APPEND to see the mail storage work.
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice", "secret pass").Wait(); err != nil {
		t.Fatalf("IMAP login: %v\n%s", err, s.Log())
	}
	if err := c.Login("alice", "wrong").Wait(); err == nil {
		t.Error("second LOGIN unexpectedly succeeded")
	}
	msg := "Subject: hi\r\n\r\nhello\r\n"
	ac := c.Append("INBOX", int64(len(msg)), nil)
	ac.Write([]byte(msg))
	ac.Close()
	if _, err := ac.Wait(); err != nil {
		t.Fatalf("APPEND: %v", err)
	}
	if err := c.Create("Sub/Folder", nil).Wait(); err != nil {
		t.Fatalf("CREATE: %v", err)
	}
	c.Logout().Wait()

	// The message is a file in the Maildir.
	ents, err := os.ReadDir(s.Maildir("alice") + "/cur")
	if err != nil {
		t.Fatal(err)
	}
	ents2, _ := os.ReadDir(s.Maildir("alice") + "/new")
	if len(ents)+len(ents2) != 1 {
		t.Errorf("Maildir has %d+%d messages, want 1", len(ents), len(ents2))
	}

	// Implicit TLS, verified against CACertFile for both names.
	pem, err := os.ReadFile(s.CACertFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatal("CACertFile holds no certificate")
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		tc, err := imapclient.DialTLS(s.IMAPSAddr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: name}})
		if err != nil {
			t.Fatalf("IMAPS as %s: %v", name, err)
		}
		if err := tc.Login("alice", "secret pass").Wait(); err != nil {
			t.Errorf("IMAPS login: %v", err)
		}
		tc.Close()
	}

	// POP3 plaintext and POP3S.
	pc, err := net.Dial("tcp", s.POP3Addr)
	if err != nil {
		t.Fatal(err)
	}
	if stat := pop3Login(t, pc, "alice", "secret pass"); !strings.HasPrefix(stat, "+OK 1 ") {
		t.Errorf("POP3 STAT = %q, want 1 message", stat)
	}
	pc.Close()
	psc, err := tls.Dial("tcp", s.POP3SAddr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	if stat := pop3Login(t, psc, "alice", "secret pass"); !strings.HasPrefix(stat, "+OK 1 ") {
		t.Errorf("POP3S STAT = %q, want 1 message", stat)
	}
	psc.Close()

	// doveadm sees the same storage.
	out := s.Doveadm(t, "mailbox", "list", "-u", "alice")
	for _, want := range []string{"INBOX", "Sub/Folder"} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("doveadm mailbox list = %q, missing %q", out, want)
		}
	}
	if _, err := s.RunDoveadm("mailbox", "list", "-u", "nobody-here"); err == nil {
		t.Error("doveadm for an unknown user succeeded")
	}
	if !strings.Contains(s.Log(), "imap-login: Info: Login: user=<alice>") {
		t.Errorf("log lacks the login:\n%s", s.Log())
	}
}

func TestNamespaceOption(t *testing.T) {
	t.Parallel()
	s := dovecottest.Start(t, &dovecottest.Options{NamespacePrefix: "INBOX.", Separator: '.'})
	s.AddUser(t, "bob", "pw")
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("bob", "pw").Wait(); err != nil {
		t.Fatal(err)
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "INBOX." || ns.Personal[0].Delim != '.' {
		t.Fatalf("NAMESPACE personal = %+v, want INBOX. with '.'", ns.Personal)
	}
	if err := c.Create("INBOX.Sent", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	out := s.Doveadm(t, "mailbox", "list", "-u", "bob")
	if !strings.Contains(out, "INBOX.Sent\n") {
		t.Errorf("doveadm mailbox list = %q", out)
	}
}

func TestParallelAndClose(t *testing.T) {
	t.Parallel()
	const n = 3
	servers := make([]*dovecottest.Server, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := dovecottest.New(nil)
			if err != nil {
				errs <- err
				return
			}
			servers[i] = s
		}()
	}
	wg.Wait()
	close(errs)
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.Close()
			}
		}
	}()
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, s := range servers {
		for _, a := range []string{s.IMAPAddr, s.IMAPSAddr, s.POP3Addr, s.POP3SAddr, s.Dir} {
			if seen[a] {
				t.Errorf("%s used twice", a)
			}
			seen[a] = true
		}
	}
	s := servers[0]
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := os.Stat(s.Dir); !os.IsNotExist(err) {
		t.Errorf("Dir still exists after Close: %v", err)
	}
	if c, err := net.DialTimeout("tcp", s.IMAPAddr, time.Second); err == nil {
		c.Close()
		t.Errorf("IMAP port still open after Close")
	}
}

func TestBadUser(t *testing.T) {
	t.Parallel()
	if err := dovecottest.Installed(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	s, err := dovecottest.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, u := range []string{"", "a:b", "../x", "a\nb"} {
		if err := s.CreateUser(u, "pw"); err == nil {
			t.Errorf("CreateUser(%q) succeeded", u)
		}
	}
	if err := s.CreateUser("carol", "p:w"); err == nil {
		t.Error("password with ':' accepted")
	}
	if err := s.CreateUser("carol", "pw"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser("carol", "pw"); err == nil {
		t.Error("duplicate user accepted")
	}
}

// TestInstalledWithoutSbinInPath checks the fallback for a PATH without
// /usr/sbin, as non-root users often have.
func TestInstalledWithoutSbinInPath(t *testing.T) {
	if err := dovecottest.Installed(); err != nil {
		if os.Getenv("CI") == "" {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	t.Setenv("PATH", "/nonexistent")
	if err := dovecottest.Installed(); err != nil {
		t.Errorf("Installed() with an empty PATH = %v", err)
	}
}

func TestExtraConfig(t *testing.T) {
	t.Parallel()
	s := dovecottest.Start(t, &dovecottest.Options{ExtraConfig: "imap_capability = +XMAILKEEPTEST"})
	s.AddUser(t, "u", "p")
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("u", "p").Wait(); err != nil {
		t.Fatal(err)
	}
	caps, err := c.Capability().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if !caps.Has("XMAILKEEPTEST") {
		t.Errorf("capabilities %v lack the one added by ExtraConfig", caps)
	}
	if conf, err := os.ReadFile(s.ConfigFile); err != nil || !strings.Contains(string(conf), "imap_capability = +XMAILKEEPTEST") {
		t.Errorf("ConfigFile lacks ExtraConfig (%v)", err)
	}
}

// TestCyrusLike: the CyrusLike options give NAMESPACE (("INBOX." ".")).
func TestCyrusLike(t *testing.T) {
	s := dovecottest.Start(t, dovecottest.CyrusLike())
	s.AddUser(t, "cy", "cy-Pw")
	c, err := imapclient.DialInsecure(s.IMAPAddr, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("cy", "cy-Pw").Wait(); err != nil {
		t.Fatal(err)
	}
	ns, err := c.Namespace().Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(ns.Personal) != 1 || ns.Personal[0].Prefix != "INBOX." || ns.Personal[0].Delim != '.' {
		t.Fatalf("personal namespace %+v, want INBOX. with '.'", ns.Personal)
	}
}
