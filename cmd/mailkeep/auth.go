package main

import (
	"context"
	"fmt"
	"io"
)

// cmdAuth is replaced by the real command.
func cmdAuth(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mailkeep auth: not available yet")
	return exitFailed
}
