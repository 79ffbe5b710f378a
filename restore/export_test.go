package restore

import "sync/atomic"

// SetBatchLimits sets the MULTIAPPEND batch bounds for a test and returns
// the function that puts them back.
func SetBatchLimits(msgs int, bytes int64) func() {
	m, b := maxBatchMsgs, maxBatchBytes
	maxBatchMsgs, maxBatchBytes = msgs, bytes
	return func() { maxBatchMsgs, maxBatchBytes = m, b }
}

// CountBatches counts the MULTIAPPEND commands sent with more than one
// message from now on (until the returned stop is called).
func CountBatches() (n *atomic.Int64, stop func()) {
	n = new(atomic.Int64)
	batchSent = func(k int) {
		if k > 1 {
			n.Add(1)
		}
	}
	return n, func() { batchSent = nil }
}

// IgnoreAppendLimit makes the restore send messages over the destination's
// APPENDLIMIT, for a test of the server's refusal; it returns the undo.
func IgnoreAppendLimit() func() {
	ignoreAppendLimit = true
	return func() { ignoreAppendLimit = false }
}

// AppendWindow is how many APPENDs may await their OK at once.
const AppendWindow = appendWindow
