package imapconn

import (
	"strings"

	"github.com/emersion/go-imap/v2/imapclient"
)

// Bye returns the text of the last untagged BYE the server sent on c (at
// most its first 64 bytes, after "* BYE "), and whether there was one.
// go-imap drops a BYE's text; a provider's reason for ending a session
// (Gmail's "Session expired, please login again." at its daily limit) is
// only there.
func Bye(c *imapclient.Client) (string, bool) {
	v, ok := guards.Load(c)
	if !ok {
		return "", false
	}
	g := v.(*guard)
	g.mu.Lock()
	line := g.bye
	g.mu.Unlock()
	if line == "" {
		return "", false
	}
	rest := strings.TrimSpace(strings.TrimPrefix(line, "*"))
	if len(rest) >= 3 && strings.EqualFold(rest[:3], "BYE") {
		rest = strings.TrimSpace(rest[3:])
	}
	return strings.TrimRight(rest, "\r\n"), true
}
