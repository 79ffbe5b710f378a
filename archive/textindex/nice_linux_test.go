package textindex

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
)

// threadNice reads the nice value of the calling thread from /proc.
func threadNice(t *testing.T) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", syscall.Gettid()))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return f[16] // field 19 of stat: nice
}

// TestLowerPriority: the goroutine that writes the index runs on a thread
// of its own at the nice value asked for; the process's other threads keep
// theirs.
func TestLowerPriority(t *testing.T) {
	before := threadNice(t)
	got := make(chan string)
	go func() {
		lowerPriority(7)
		got <- threadNice(t)
	}()
	if n := <-got; n != "7" {
		t.Errorf("nice of the index writer's thread %s, want 7", n)
	}
	for i := 0; i < 20; i++ {
		go func() { got <- threadNice(t) }()
		if n := <-got; n != before {
			t.Fatalf("another goroutine's thread has nice %s, want %s", n, before)
		}
	}
}
