package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// buildVersion describes the binary from its build information: the
// module version ("(devel)" for a build inside the source tree), the VCS
// revision with "+modified" when the tree had uncommitted changes, the
// commit time, and the Go version.
func buildVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown (no build information) " + runtime.Version()
	}
	return formatVersion(bi)
}

// formatVersion is buildVersion's text for bi. Go records the revision
// only when it builds inside a git checkout whose .git is a directory
// (not in a git worktree) and without -buildvcs=false.
func formatVersion(bi *debug.BuildInfo) string {
	s := bi.Main.Version
	if s == "" {
		s = "(devel)"
	}
	var rev, at string
	modified := false
	for _, kv := range bi.Settings {
		switch kv.Key {
		case "vcs.revision":
			rev = kv.Value
		case "vcs.time":
			at = kv.Value
		case "vcs.modified":
			modified = kv.Value == "true"
		}
	}
	if rev != "" {
		s += " " + rev
		if modified {
			s += "+modified"
		}
	}
	if at != "" {
		s += " " + at
	}
	return s + " " + bi.GoVersion
}

func cmdVersion(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) != 0 {
		fmt.Fprintln(stderr, "usage: mailkeep version")
		return exitUsage
	}
	fmt.Fprintln(stdout, "mailkeep", buildVersion())
	return exitOK
}
