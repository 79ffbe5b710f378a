package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/mailkeep/mailkeep/archive/catalog"
)

// Helpers of the commands that read an archive (ls, cat, show): the
// archive is --archive DIR or a config account NAME, and a folder is
// found as a person types it.

// ErrAmbiguousFolder is a folder name that matches several folders when
// case is ignored and none exactly.
var ErrAmbiguousFolder = errors.New("folder name matches several folders")

// readerArchive resolves --archive DIR or one account NAME of the config
// file into the archive directory.
func readerArchive(cfg *configFlag, cmd, dir string, names []string, stderr io.Writer) (string, error) {
	switch {
	case dir != "" && len(names) > 0:
		return "", usageErr("give --archive DIR or an account NAME, not both")
	case dir != "":
		return dir, nil
	case len(names) != 1:
		return "", usageErr("usage: mailkeep %s", lookupCommand(cmd).usage[0])
	}
	_, accts, err := cfg.accounts(names, stderr)
	if err != nil {
		return "", err
	}
	return accts[0].Archive, nil
}

// findFolder finds the folder a person named: the exact name first; then
// INBOX in any case (IMAP's INBOX is case-insensitive, RFC 3501 5.1);
// then the one folder whose name matches ignoring case. Several such
// matches are an error listing them (ErrAmbiguousFolder), none is
// catalog.ErrNotFound.
func findFolder(ctx context.Context, c *catalog.Catalog, name string) (*catalog.Folder, error) {
	f, err := c.Folder(ctx, name)
	if err == nil || !errors.Is(err, catalog.ErrNotFound) {
		return f, err
	}
	if strings.EqualFold(name, "INBOX") {
		if f, ierr := c.Folder(ctx, "INBOX"); ierr == nil {
			return f, nil
		}
	}
	all, lerr := c.Folders(ctx)
	if lerr != nil {
		return nil, lerr
	}
	var match []*catalog.Folder
	for _, f := range all {
		if strings.EqualFold(f.Name, name) {
			match = append(match, f)
		}
	}
	switch len(match) {
	case 0:
		return nil, err
	case 1:
		return match[0], nil
	}
	names := make([]string, len(match))
	for i, f := range match {
		names[i] = fmt.Sprintf("%q", f.Name)
	}
	return nil, fmt.Errorf("folder %q: %w: %s (give the exact name)", name, ErrAmbiguousFolder, strings.Join(names, ", "))
}

// lsFolderJSON is one line of "ls --json".
type lsFolderJSON struct {
	Folder      string `json:"folder"`
	Messages    int    `json:"messages"`
	Expunged    int    `json:"expunged"`
	Deleted     int    `json:"deleted"`
	Bytes       int64  `json:"bytes"`
	UIDValidity uint32 `json:"uidvalidity"`
	Gone        bool   `json:"gone_from_server"`
}

// lsMessageJSON is one line of "ls --folder F --json".
type lsMessageJSON struct {
	Folder   string   `json:"folder"`
	ID       string   `json:"id"` // what cat and show take after the folder
	UID      uint32   `json:"uid,omitempty"`
	UIDL     string   `json:"uidl,omitempty"`
	Date     string   `json:"date"`
	From     string   `json:"from"`
	Subject  string   `json:"subject"`
	Size     int64    `json:"size"`
	Flags    []string `json:"flags"`
	SHA256   string   `json:"sha256"`
	Expunged bool     `json:"expunged"`
}

func writeJSONLine(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
