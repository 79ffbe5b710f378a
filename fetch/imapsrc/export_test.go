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

// SetBehindHooks lets tests see the folders whose last commit runs
// behind: start is called as one starts (and what it returns as it
// ends), full when a folder waits because Connections of them run.
func SetBehindHooks(start func() (end func()), full func()) (restore func()) {
	os, of := behindStart, behindFull
	behindStart, behindFull = start, full
	return func() { behindStart, behindFull = os, of }
}

// SetPlanChunk lets tests make the plan take the listed folders in
// several chunks.
func SetPlanChunk(n int) (restore func()) {
	old := planChunk
	planChunk = n
	return func() { planChunk = old }
}
