package provlimit

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		source             string // where the answer is documented
		status, code, text string
		kind               Kind
		delay              time.Duration
	}{
		{"Gmail: developers.google.com/gmail/imap/imap-extensions; issue 13 (imapsync FAQ.Gmail)", "OK", "THROTTLED", "Success", Throttled, 0},
		{"Gmail: IMAPClient users; issue 13", "NO", "OVERQUOTA", "Account exceeded command or bandwidth limits. (Failure)", DailyLimit, 0},
		{"Gmail: APPEND past the daily upload limit (about 500 MB a day)", "NO", "ALERT", "Account exceeded command or bandwidth limits. (Failure)", DailyLimit, 0},
		{"Gmail: upload limit, code with brackets", "NO", "[ALERT]", "Account exceeded command or bandwidth limits. (Failure)", DailyLimit, 0},
		{"Gmail: upload limit ending the session", "BYE", "UNAVAILABLE", "Account exceeded command or bandwidth limits. (Failure)", DailyLimit, 0},
		{"Gmail: upload limit without a code", "NO", "", "account exceeded command or bandwidth limits.", DailyLimit, 0},
		{"Gmail: OVERQUOTA on APPEND", "NO", "[OVERQUOTA]", "Account exceeded command or bandwidth limits. (Failure)", DailyLimit, 0},
		{"a bare BYE [UNAVAILABLE] stays a temporary failure (Dovecot, load shedding)", "BYE", "UNAVAILABLE", "Temporary System Error", Transient, 0},
		{"an ALERT of something else is no limit", "NO", "ALERT", "Please log in via your web browser", None, 0},
		{"an OK quoting the bandwidth text is no limit", "OK", "ALERT", "Account exceeded command or bandwidth limits.", None, 0},
		{"Gmail: imapsync FAQ.Gmail; issue 13", "NO", "ALERT", "Too many simultaneous connections. (Failure)", TooManyConnections, 0},
		{"Gmail: imapsync FAQ.Gmail (at the daily limit); issue 13", "BYE", "", "Session expired, please login again.", DailyLimit, 0},
		{"Gmail: imapsync FAQ.Gmail, GYB users (APPEND over APPENDLIMIT); issue 13", "BAD", "TOOBIG", "Message too large.", MessageTooBig, 0},
		{"RFC 7889 APPENDLIMIT / RFC 4469 TOOBIG on NO", "NO", "[TOOBIG]", "", MessageTooBig, 0},
		{"Microsoft 365: imapsync FAQ.Office365; imap_tools #135; email-oauth2-proxy #191", "BAD", "", "Request is throttled. Suggested Backoff Time: 299961 milliseconds", Throttled, 299961 * time.Millisecond},
		{"Microsoft 365: same, NO variant and case", "NO", "", "request is throttled. suggested backoff time: 1500 MILLISECONDS", Throttled, 1500 * time.Millisecond},
		{"Microsoft 365: email-oauth2-proxy #191 (no delay given)", "BAD", "", "Request is throttled.", Throttled, 0},
		{"Microsoft 365: hostile value, capped at 30 min", "BAD", "", "Request is throttled. Suggested Backoff Time: 999999999999 milliseconds", Throttled, 30 * time.Minute},
		{"Microsoft 365: wiki.jashankj.space/Rants/Office365", "BAD", "", "User is authenticated but not connected.", Transient, 0},
		{"Microsoft 365: MailKit tracker (issue 13)", "NO", "", "Maximum size of appendable message has been exceeded.", MessageTooBig, 0},
		{"RFC 5530 UNAVAILABLE", "NO", "UNAVAILABLE", "Temporary failure, try later", Transient, 0},
		{"RFC 5530 LIMIT", "NO", "LIMIT", "Too many flags", Throttled, 0},
		{"plain refusal is no limit", "NO", "", "Mailbox does not exist", None, 0},
		{"plain BYE is no limit", "BYE", "", "Logging out", None, 0},
		{"TRYCREATE is no limit", "NO", "TRYCREATE", "No such mailbox", None, 0},
		{"an OK whose text quotes Microsoft is no limit", "OK", "", "User is authenticated but not connected", None, 0},
	} {
		t.Run(tc.source, func(t *testing.T) {
			e := Classify(tc.status, tc.code, tc.text)
			got := None
			if e != nil {
				got = e.Kind
			}
			if got != tc.kind {
				t.Fatalf("Classify(%q, %q, %q) = %v, want %v", tc.status, tc.code, tc.text, got, tc.kind)
			}
			if e != nil && e.SuggestedDelay != tc.delay {
				t.Errorf("delay %v, want %v", e.SuggestedDelay, tc.delay)
			}
		})
	}
}

func TestFromError(t *testing.T) {
	ie := &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeTooBig, Text: "Message too large."}
	err := fmt.Errorf("APPEND to %q: %w", "INBOX", ie)
	if !errors.Is(FromError(err), ErrMessageTooBig) || KindOf(err) != MessageTooBig {
		t.Errorf("FromError(%v) = %v", err, FromError(err))
	}
	st := ParseStatus("BAD Request is throttled. Suggested Backoff Time: 2000 milliseconds")
	e := FromError(fmt.Errorf("wrapped: %w", st))
	if e == nil || e.Kind != Throttled || e.SuggestedDelay != 2*time.Second {
		t.Errorf("raw status: %v", e)
	}
	for _, line := range []string{
		"NO [ALERT] Account exceeded command or bandwidth limits. (Failure)",
		"BYE [UNAVAILABLE] Account exceeded command or bandwidth limits. (Failure)",
		"NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)",
	} {
		ie := &imap.Error{Type: imap.StatusResponseTypeNo, Text: "x"}
		if st := ParseStatus(line); st != nil {
			ie = &imap.Error{Type: imap.StatusResponseType(st.Type), Code: imap.ResponseCode(st.Code), Text: st.Text}
		}
		if !errors.Is(FromError(fmt.Errorf("APPEND: %w", ie)), ErrDailyLimit) {
			t.Errorf("%q: %v, want the daily limit", line, FromError(ie))
		}
	}
	if st := ParseStatus("NO [OVERQUOTA] Account exceeded"); st == nil || st.Code != "OVERQUOTA" || st.Text != "Account exceeded" {
		t.Errorf("ParseStatus: %+v", st)
	}
	if ParseStatus("* 1 EXISTS") != nil {
		t.Error("ParseStatus accepted a data line")
	}
	if FromError(errors.New("Request is throttled. Suggested Backoff Time: 5 milliseconds")) != nil {
		t.Error("a plain error's text was matched")
	}
	var pe *Error
	if !errors.As(fmt.Errorf("x: %w", Classify("NO", "OVERQUOTA", "")), &pe) || !errors.Is(pe, ErrDailyLimit) || errors.Is(pe, ErrThrottled) {
		t.Error("errors.Is/As on *Error")
	}
}

func TestBackoffDelay(t *testing.T) {
	fixed := func(v float64) func() float64 { return func() float64 { return v } }
	b := Backoff{Base: time.Second, Max: 8 * time.Second, Rand: fixed(0)}
	for i, want := range []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
		if got := b.Delay(i, 0); got != want {
			t.Errorf("attempt %d: %v, want %v (half of the capped exponential)", i, got, want)
		}
	}
	b.Rand = fixed(0.999999)
	if got := b.Delay(10, 0); got > 8*time.Second || got < 7*time.Second {
		t.Errorf("capped with jitter: %v", got)
	}
	b.Rand = fixed(0)
	if got := b.Delay(0, 300*time.Second); got != 300*time.Second {
		t.Errorf("suggested delay not honoured: %v", got)
	}
	if got := b.Delay(0, time.Hour); got != 10*time.Minute {
		t.Errorf("suggested delay not capped: %v", got)
	}
	b.Rand = fixed(0.5)
	if got := b.Delay(0, 10*time.Second); got != 10500*time.Millisecond {
		t.Errorf("suggested delay jitter: %v", got)
	}
}

func TestRetry(t *testing.T) {
	throttled := &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Request is throttled. Suggested Backoff Time: 1500 milliseconds"}
	var slept []time.Duration
	s := SleeperFunc(func(ctx context.Context, d time.Duration) error { slept = append(slept, d); return nil })
	b := Backoff{Attempts: 3, Rand: func() float64 { return 0 }}
	calls := 0
	err := Retry(context.Background(), b, s, func() error {
		calls++
		if calls < 3 {
			return throttled
		}
		return nil
	})
	if err != nil || calls != 3 || len(slept) != 2 || slept[0] != 1500*time.Millisecond {
		t.Fatalf("err %v, calls %d, slept %v", err, calls, slept)
	}
	// Gives up after Attempts retries, returning the answer.
	calls, slept = 0, nil
	err = Retry(context.Background(), b, s, func() error { calls++; return throttled })
	if !errors.Is(FromError(err), ErrThrottled) || calls != 4 || len(slept) != 3 {
		t.Fatalf("err %v, calls %d, slept %v", err, calls, slept)
	}
	// Not a limit: no retry.
	calls = 0
	plain := &imap.Error{Type: imap.StatusResponseTypeNo, Text: "no"}
	if err := Retry(context.Background(), b, s, func() error { calls++; return plain }); err != plain || calls != 1 {
		t.Fatalf("err %v, calls %d", err, calls)
	}
	// A cancelled context ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Retry(ctx, b, RealSleeper{}, func() error { return throttled }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestBudget(t *testing.T) {
	b := Budget{MaxBytes: 1000, MaxMessages: 3}
	for _, tc := range []struct {
		bytes, msgs, size int64
		ok                bool
	}{
		{0, 0, 5000, true}, // the first message always goes
		{400, 1, 500, true},
		{400, 1, 700, false},
		{100, 3, 1, false},
		{100, 2, 1, true},
	} {
		if got := b.Allows(tc.bytes, tc.msgs, tc.size); got != tc.ok {
			t.Errorf("Allows(%d, %d, %d) = %v", tc.bytes, tc.msgs, tc.size, got)
		}
	}
	if !(Budget{}).Allows(1<<40, 1<<30, 1<<30) || !(Budget{}).Unlimited() {
		t.Error("zero budget limits")
	}
	for _, tc := range []struct {
		b           Budget
		bytes, msgs int64
		runs        int64
	}{
		{b, 2500, 2, 3},
		{b, 10, 10, 4},
		{b, 0, 0, 0},
		{Budget{}, 10, 1, 1},
		{Budget{MaxBytes: 20 << 30}, 45 << 30, 100000, 3},
	} {
		if got := tc.b.Estimate(tc.bytes, tc.msgs); got.Runs != tc.runs || got.Bytes != tc.bytes {
			t.Errorf("%+v.Estimate(%d, %d) = %+v, want %d runs", tc.b, tc.bytes, tc.msgs, got, tc.runs)
		}
	}
	if s := b.Estimate(3<<20, 5).String(); s != "5 messages, 3.0 MiB left, about 3146 more runs" {
		t.Errorf("String: %q", s)
	}
}

func TestStorm(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Storm{Max: 2, Window: time.Minute, Now: func() time.Time { return now }}
	for i := 0; i < 2; i++ {
		if s.Bye() != Transient {
			t.Fatalf("BYE %d", i+1)
		}
	}
	if s.Bye() != TooManyConnections {
		t.Fatal("third BYE within a minute is a storm")
	}
	now = now.Add(2 * time.Minute)
	if s.Bye() != Transient {
		t.Fatal("the window passed")
	}
}

func FuzzClassify(f *testing.F) {
	f.Add("BAD Request is throttled. Suggested Backoff Time: 299961 milliseconds")
	f.Add("NO [OVERQUOTA] Account exceeded command or bandwidth limits. (Failure)")
	f.Add("BYE Session expired, please login again.")
	f.Add("NO [ALERT] Account exceeded command or bandwidth limits. (Failure)")
	f.Fuzz(func(t *testing.T, line string) {
		st := ParseStatus(line)
		if st == nil {
			return
		}
		if e := Classify(st.Type, st.Code, st.Text); e != nil && (e.SuggestedDelay < 0 || e.SuggestedDelay > maxSuggested) {
			t.Fatalf("%q: delay %v", line, e.SuggestedDelay)
		}
	})
}
