package gmailext_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/internal/gmailtest"
	"github.com/mailkeep/mailkeep/internal/imapconn"
	"github.com/mailkeep/mailkeep/internal/mstest"
)

func dial(t *testing.T, addr, user, pass, cmd string) (*imapconn.Raw, *gmailext.Client) {
	t.Helper()
	r, err := imapconn.DialRaw(context.Background(), imapconn.Config{Addr: addr, TLS: imapconn.TLSNone, User: user, Password: pass, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if cmd != "" {
		if _, err := r.Cmd(cmd); err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
	}
	return r, gmailext.NewBuffered(r.R, r.W, nil)
}

func TestFetchMetaEach(t *testing.T) {
	s := gmailtest.Start(t, "a", "p", gmailtest.Options{})
	var ids []uint64
	for i := range 5 {
		ids = append(ids, s.Add(gmailtest.NewMessage{Body: []byte(fmt.Sprintf("Subject: %d\r\n\r\nx\r\n", i)), Labels: []string{"L" + fmt.Sprint(i%2)}}))
	}
	_, g := dial(t, s.Addr, "a", "p", `EXAMINE "[Gmail]/All Mail"`)
	ctx := context.Background()
	var got []uint64
	res, err := g.FetchMetaEach(ctx, "2:4", gmailext.FetchOptions{ModSeq: true}, func(m gmailext.Message) error {
		got = append(got, m.MsgID)
		if m.ModSeq == 0 || len(m.Labels) != 1 {
			t.Errorf("message %d: %+v", m.UID, m)
		}
		return nil
	})
	if err != nil || len(res.Messages) != 0 || !reflect.DeepEqual(got, ids[1:4]) {
		t.Fatalf("FetchMetaEach: %v, %v, kept %d", got, err, len(res.Messages))
	}

	// An error from fn stops the reading and comes back wrapped.
	stop := errors.New("stop")
	_, err = g.FetchMetaEach(ctx, "1:*", gmailext.FetchOptions{}, func(gmailext.Message) error { return stop })
	if !errors.Is(err, stop) {
		t.Errorf("err = %v, want the callback's", err)
	}
}

func TestStatusErrors(t *testing.T) {
	s := gmailtest.Start(t, "a", "p", gmailtest.Options{})
	s.Add(gmailtest.NewMessage{Body: []byte("Subject: x\r\n\r\nx\r\n")})
	_, g := dial(t, s.Addr, "a", "p", `EXAMINE "[Gmail]/All Mail"`)
	_, err := g.StoreLabels(context.Background(), "1", true, []string{"Work"})
	var se *gmailext.StatusError
	if !errors.As(err, &se) || se.Status != "NO" || se.Command != "UID STORE" {
		t.Errorf("STORE in a read-only folder: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.FetchMeta(ctx, "1:*", gmailext.FetchOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: %v", err)
	}
	if _, err := g.FetchMeta(context.Background(), "1:*; LOGOUT", gmailext.FetchOptions{}); err == nil {
		t.Error("UID set with a command in it accepted")
	}
}

// TestMicrosoftThrottle: the reader reports Microsoft's throttling answer
// as a StatusError whose text carries the suggested backoff.
func TestMicrosoftThrottle(t *testing.T) {
	clk := &clock{t: time.Unix(0, 0)}
	s := mstest.Start(t, "a", "p", mstest.Options{Throttle: mstest.Throttle{Commands: 4, Window: time.Minute, Backoff: 299961 * time.Millisecond}, Now: clk.Now})
	_, g := dial(t, s.Addr, "a", "p", "SELECT INBOX")
	_, err := g.FetchMeta(context.Background(), "1:*", gmailext.FetchOptions{})
	var se *gmailext.StatusError
	if !errors.As(err, &se) || se.Status != "BAD" || se.Text != "Request is throttled. Suggested Backoff Time: 299961 milliseconds" {
		t.Fatalf("throttled FETCH: %v", err)
	}
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
