//go:build !race

package imapsrc_test

// raceDetector is true when the tests run under -race (race_test.go).
const raceDetector = false
