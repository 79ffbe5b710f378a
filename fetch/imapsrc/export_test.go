package imapsrc

// SetBodyChunk lets tests make folders span several body FETCH commands.
func SetBodyChunk(n int) (restore func()) {
	old := bodyChunk
	bodyChunk = n
	return func() { bodyChunk = old }
}
