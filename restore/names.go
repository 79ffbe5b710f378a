package restore

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailkeep/mailkeep/archive/layout"
)

// discover learns the destination's delimiter and personal namespace
// (NAMESPACE, else LIST "" ""), its folders and its special-use folders.
func (r *run) discover(c *imapclient.Client) error {
	r.delim = '/'
	haveNS := false
	if c.Caps().Has(imap.CapNamespace) || c.Caps().Has(imap.CapIMAP4rev2) {
		ns, err := c.Namespace().Wait()
		if err == nil && len(ns.Personal) > 0 {
			r.nsPrefix, r.delim, haveNS = ns.Personal[0].Prefix, ns.Personal[0].Delim, true
		}
	}
	if !haveNS {
		l, err := c.List("", "", nil).Collect()
		if err != nil {
			return fmt.Errorf(`LIST "" "": %w`, err)
		}
		if len(l) > 0 {
			r.delim = l[0].Delim
		}
	}
	opt := &imap.ListOptions{ReturnSpecialUse: c.Caps().Has(imap.CapSpecialUse)}
	list, err := c.List("", "*", opt).Collect()
	if err != nil {
		return fmt.Errorf("LIST: %w", err)
	}
	r.existing = map[string]bool{}
	r.special = map[string]string{}
	for _, l := range list {
		selectable := true
		for _, a := range l.Attrs {
			switch s := strings.ToLower(string(a)); s {
			case `\sent`, `\drafts`, `\trash`, `\junk`, `\archive`:
				if _, ok := r.special[s]; !ok {
					r.special[s] = l.Mailbox
				}
			case `\all`:
				// Gmail's All Mail: where a Gmail archive's All Mail goes
				// (gmail.go). Elsewhere \All is a virtual folder.
				if _, ok := r.special[s]; !ok && r.gmail {
					r.special[s] = l.Mailbox
				}
			case `\noselect`, `\nonexistent`:
				selectable = false
			}
		}
		if selectable {
			r.existing[l.Mailbox] = true
		}
	}
	r.log.Debug("destination", "delimiter", string(r.delim), "namespace", r.nsPrefix, "folders", len(list), "special_use", r.special)
	return nil
}

// wellKnown maps common names of special folders (lower case) to their
// special-use attribute, for sources that do not record it.
var wellKnown = map[string]string{
	"sent": `\sent`, "sent items": `\sent`, "sent messages": `\sent`, "sent mail": `\sent`,
	"drafts": `\drafts`, "draft": `\drafts`,
	"trash": `\trash`, "deleted items": `\trash`, "deleted messages": `\trash`, "bin": `\trash`,
	"junk": `\junk`, "spam": `\junk`, "junk e-mail": `\junk`, "junk email": `\junk`,
	"archive": `\archive`, "archives": `\archive`,
}

// destName maps a source folder onto the destination: a folder with a
// special-use attribute (any level) or a well-known name (top level only)
// goes to the destination's folder with that attribute; any other is its
// components joined with the destination's delimiter, under Options.Prefix
// and the personal namespace prefix. INBOX stays INBOX.
func (r *run) destName(f Folder) (string, error) {
	if d, ok := r.specialName(f); ok {
		return d, nil
	}
	return r.plainName(f, 1)
}

// specialName is the destination's special-use folder that f goes to, if
// any (see destName).
func (r *run) specialName(f Folder) (string, bool) {
	if r.opt.NoSpecialUse || r.opt.Prefix != "" && !r.prefixSpecial(f) { // gmail.go
		return "", false
	}
	comps := r.relative(layout.Components(f.Name, f.Delim))
	su := strings.ToLower(f.SpecialUse)
	if su == "" && len(comps) == 1 {
		su = wellKnown[strings.ToLower(comps[0])]
	}
	d, ok := r.special[su]
	return d, ok && su != ""
}

// plainName is f's name on the destination without special-use mapping;
// n > 1 suffixes its last level with " (n)" (Options.RenameCollisions).
func (r *run) plainName(f Folder, n int) (string, error) {
	comps := r.relative(layout.Components(f.Name, f.Delim))
	if r.opt.Prefix != "" {
		comps = append(strings.Split(strings.Trim(r.opt.Prefix, "/"), "/"), comps...)
	}
	if n > 1 {
		comps = append(comps[:len(comps)-1:len(comps)-1], fmt.Sprintf("%s (%d)", comps[len(comps)-1], n))
	}
	if len(comps) == 1 && comps[0] == "INBOX" {
		return "INBOX", nil
	}
	if r.delim == 0 && len(comps) > 1 {
		return "", fmt.Errorf("%w: the destination has no hierarchy, and %q has %d levels", ErrUnrepresentable, f.Name, len(comps))
	}
	for _, c := range comps {
		if r.delim != 0 && strings.ContainsRune(c, r.delim) {
			return "", fmt.Errorf("%w: component %q contains the destination's hierarchy delimiter %q (restore it after renaming it in the source, or leave it out with --exclude)", ErrUnrepresentable, c, r.delim)
		}
		if c == "" {
			return "", fmt.Errorf("%w: empty level in %q", ErrUnrepresentable, f.Name)
		}
	}
	name := layout.Join(comps, r.delim)
	if r.nsPrefix != "" && !hasPrefixFold(name, r.nsPrefix) {
		name = r.nsPrefix + name
	}
	return name, nil
}

// relative strips the source's personal namespace prefix from a folder's
// components (INBOX.Sent on Cyrus is Sent); INBOX itself, and folders
// outside the namespace, are left as they are.
func (r *run) relative(comps []string) []string {
	n := len(r.srcNS)
	if n == 0 || len(comps) <= n {
		return comps
	}
	for i, c := range r.srcNS {
		if c != comps[i] && !(strings.EqualFold(c, "INBOX") && strings.EqualFold(comps[i], "INBOX")) {
			return comps
		}
	}
	return comps[n:]
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// create makes dst unless it exists. Servers that need parents to exist
// first get them created, then dst again.
func (r *run) create(c *imapclient.Client, dst string) error {
	if r.existing[dst] || strings.EqualFold(dst, "INBOX") {
		return nil
	}
	if r.opt.DryRun {
		r.dryRunf("would create folder %q\n", dst)
		r.count(func(s *Stats) { s.Created++ })
		return nil
	}
	err := r.create1(c, dst)
	if err != nil && r.delim != 0 && r.ctx.Err() == nil {
		parts := strings.Split(dst, string(r.delim))
		for i := 1; i < len(parts); i++ {
			p := strings.Join(parts[:i], string(r.delim))
			if !r.existing[p] && p+string(r.delim) != r.nsPrefix && !strings.EqualFold(p, "INBOX") {
				r.create1(c, p) // best effort: it may exist without being selectable
			}
		}
		err = r.create1(c, dst)
	}
	return err
}

func (r *run) create1(c *imapclient.Client, name string) error {
	if err := c.Create(name, nil).Wait(); err != nil {
		var ie *imap.Error
		if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeAlreadyExists {
			return fmt.Errorf("CREATE %q: %w", name, err)
		}
	} else {
		r.count(func(s *Stats) { s.Created++ })
		if r.created == nil {
			r.created = map[string]bool{}
		}
		r.created[name] = true
		r.log.Info("created folder", "folder", name)
	}
	r.existing[name] = true
	return nil
}
