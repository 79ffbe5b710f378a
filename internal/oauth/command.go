package oauth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// DefaultCommandTimeout bounds one run of a token_command when
// CommandSource.Timeout is zero.
const DefaultCommandTimeout = 60 * time.Second

// CommandSource runs token_command ("sh -c") for every connection and uses
// its trimmed standard output as the access token. The helper is expected
// to cache and refresh tokens itself.
type CommandSource struct {
	Account string
	Command string
	// Timeout bounds one run of the command (0: DefaultCommandTimeout).
	Timeout time.Duration
}

// Token runs the command.
func (c *CommandSource) Token(ctx context.Context) (string, error) {
	limit := c.Timeout
	if limit <= 0 {
		limit = DefaultCommandTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	var out, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "sh", "-c", c.Command)
	cmd.Stdout, cmd.Stderr = &out, &stderr
	cmd.WaitDelay = 2 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "", fmt.Errorf("token_command did not finish within %s", limit)
	}
	if err != nil {
		// Its stderr is shown (the last line, clipped); its stdout
		// might hold a token and is not.
		return "", fmt.Errorf("token_command failed: %w%s", err, lastLine(stderr.String()))
	}
	tok := strings.TrimSpace(out.String())
	if tok == "" {
		return "", errors.New("token_command printed nothing")
	}
	if strings.ContainsAny(tok, " \t\r\n\x00\x01") {
		return "", errors.New("token_command printed more than one word: want the access token alone")
	}
	return tok, nil
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return ": " + clip(s)
}
