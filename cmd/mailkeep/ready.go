package main

import (
	"os"
	"strconv"
)

// readyFDEnv names a file descriptor, inherited from a test, on which
// mailkeep writes one line once its SIGINT/SIGTERM handler is installed and
// then closes it. A test that interrupts mailkeep waits for that line:
// before it, SIGINT still kills the process outright (exit by signal)
// instead of stopping the run cleanly (exit 130).
const readyFDEnv = "MAILKEEP_TEST_READY_FD"

// signalReady tells the test, if any, that signals are handled now.
func signalReady() {
	v := os.Getenv(readyFDEnv)
	if v == "" {
		return
	}
	os.Unsetenv(readyFDEnv) // once; not inherited by children either
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	if f == nil {
		return
	}
	f.WriteString("ready\n")
	f.Close()
}
