package imapsrc

import (
	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// recordNamespace records the source's personal namespace (prefix and
// delimiter, from NAMESPACE) in the catalog, for restore to map folder
// names relative to it (INBOX.Sent on Cyrus becomes Sent on Dovecot).
// Without NAMESPACE nothing is recorded: restore infers the prefix from
// the folder names. A failure is logged, never fatal to the backup.
func (b *backup) recordNamespace(c *imapclient.Client) {
	if !c.Caps().Has(imap.CapNamespace) && !c.Caps().Has(imap.CapIMAP4rev2) {
		return
	}
	ns, err := c.Namespace().Wait()
	if err != nil || len(ns.Personal) == 0 {
		b.log.Warn("NAMESPACE failed; restore will infer the namespace from the folder names", "account", b.acct, "err", err)
		return
	}
	p := ns.Personal[0]
	if err := b.a.Cat.SetSourceNamespace(b.ctx, p.Prefix, p.Delim); err != nil {
		b.log.Warn("recording the source's namespace", "account", b.acct, "err", err)
	}
}
