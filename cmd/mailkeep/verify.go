package main

import (
	"context"
	"fmt"
	"io"
)

// cmdVerify is replaced by the real command.
func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mailkeep verify: not available yet")
	return exitFailed
}
