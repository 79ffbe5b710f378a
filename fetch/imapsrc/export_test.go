package imapsrc

// SetBodyChunk lets tests make folders span several body FETCH commands.
func SetBodyChunk(n int) (restore func()) {
	old := bodyChunk
	bodyChunk = n
	return func() { bodyChunk = old }
}

// SetBatches lets tests make the listing comparison and the expunge walk
// take several batches and pages.
func SetBatches(list, page int) (restore func()) {
	ol, op := listBatch, expungePage
	listBatch, expungePage = list, page
	return func() { listBatch, expungePage = ol, op }
}
