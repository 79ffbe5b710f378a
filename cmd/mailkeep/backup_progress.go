package main

import "sync"

// backupProgress is what a backup tells its progress line: each stored
// message (add) and, once per account, the messages and bytes it plans to
// fetch (planned; bytes 0 when unknown, as for IMAP).
type backupProgress struct {
	add     func(folder string, n int, bytes int64)
	planned func(messages int, bytes int64)
}

// plannedTotals sums the planned totals of the accounts sharing one
// progress line (config mode backs several up at once) and gives them to
// it. The bytes total is known only while every account's is: one IMAP
// account (bytes unknown) makes the line count in messages.
type plannedTotals struct {
	line interface {
		SetTotal(messages int, bytes int64)
	} // a *progress.Line
	mu           sync.Mutex
	n            int
	b            int64
	bytesUnknown bool
}

func (t *plannedTotals) add(messages int, bytes int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n += messages
	t.b += bytes
	if bytes <= 0 && messages > 0 {
		t.bytesUnknown = true
	}
	b := t.b
	if t.bytesUnknown {
		b = 0
	}
	t.line.SetTotal(t.n, b)
}
