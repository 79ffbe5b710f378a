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
		if n, ok := appended(j); ok {
			msgs += n
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

// appended is the estimate for a folder synchronised completely before
// (its status recorded, under the same UIDVALIDITY): the UIDs the server
// handed out since, at most the messages it holds. It costs no catalog
// count, which reads every row of the folder (a folder of 200,000
// messages: a tenth of a second and more, for each run that finds new
// mail in it). It counts a message appended and expunged in between, and
// the messages a run interrupted in the folder stored.
func appended(j *folderJob) (int, bool) {
	st, f := j.status, j.cat
	if st == nil || st.NumMessages == nil || st.UIDValidity == 0 || f.UIDValidity != st.UIDValidity || f.UIDNext == 0 || uint32(st.UIDNext) < f.UIDNext {
		return 0, false
	}
	return int(min(uint32(st.UIDNext)-f.UIDNext, *st.NumMessages)), true
}
