package main

import (
	"context"
	"fmt"
	"io"
)

// cmdExport is replaced by the real command.
func cmdExport(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mailkeep export: not available yet")
	return exitFailed
}
