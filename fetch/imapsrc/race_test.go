//go:build race

package imapsrc_test

// raceDetector is true when the tests run under -race (norace_test.go).
//
// TestDroppedConnection alone does not run under it: go-imap v2.0.0-beta.8
// has a data race of its own on a connection dropped in the middle of a
// literal. Its reader goroutine (imapclient.Client.read) and the literal
// reader a FETCH body section hands out (imapwire.Decoder's literal
// reader) use the same bufio buffer, and when the connection is cut
// mid-literal both touch it at once. The race is inside go-imap, not in
// mailkeep's code, and the test still runs (and must pass) without -race.
const raceDetector = true
