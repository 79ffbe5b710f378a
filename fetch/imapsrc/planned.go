package imapsrc

// announce gives Options.Planned what the run plans to fetch: for each
// folder that needs work, the messages the server holds (STATUS) beyond
// those the catalog holds live for it. It is an estimate (flag changes
// and expunges cost no fetch; a message expunged and another appended in
// between cancel out), good enough for a progress line's total; the
// bytes are unknown before the FETCH of RFC822.SIZE, so they are 0.
func (b *backup) announce(jobs []*folderJob) {
	if b.opt.Planned == nil {
		return
	}
	var msgs int
	for _, j := range jobs {
		if j.cat == nil {
			continue
		}
		total, expunged, _, err := b.a.Cat.Counts(b.ctx, j.cat.ID)
		if err != nil {
			b.log.Debug("progress: no catalog count", "account", b.acct, "folder", j.cat.Name, "err", err)
			continue
		}
		msgs += max(int(msgCount(j.status))-(total-expunged), 0)
	}
	b.opt.Planned(msgs, 0)
}
