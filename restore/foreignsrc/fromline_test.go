package foreignsrc

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

func TestParseFromDate(t *testing.T) {
	for _, tt := range []struct {
		line string
		want time.Time
		ok   bool
	}{
		{"From a@b Mon Jan  1 10:20:30 2024\n", time.Date(2024, 1, 1, 10, 20, 30, 0, time.UTC), true},
		{"From - Sat Feb 05 06:07:08 2011\r\n", time.Date(2011, 2, 5, 6, 7, 8, 0, time.UTC), true},
		{"From 1634@xxx Tue Mar 03 10:00:00 +0100 2020", time.Date(2020, 3, 3, 9, 0, 0, 0, time.UTC), true},
		{"From a@b Tue Mar  3 10:00:00 2020 -0500", time.Date(2020, 3, 3, 15, 0, 0, 0, time.UTC), true},
		{"From a@b Tue Mar  3 10:00 2020", time.Date(2020, 3, 3, 10, 0, 0, 0, time.UTC), true},
		{"From a@b", time.Time{}, false},
		{"From a@b yesterday", time.Time{}, false},
	} {
		got, ok := parseFromDate(tt.line)
		if ok != tt.ok || !got.Equal(tt.want) {
			t.Errorf("%q: %v %v, want %v %v", tt.line, got, ok, tt.want, tt.ok)
		}
	}
}

// FuzzFromLines: any input yields dates without panics, and each "From "
// line at a line start is one step.
func FuzzFromLines(f *testing.F) {
	f.Add("From a@b Mon Jan  1 10:20:30 2024\nx\n\nFrom c Tue Mar 03 10:00:00 +0100 2020\n")
	f.Add("\n\nFrom \nFrom - \x00\xff 99:99:99\r\n>From x\n")
	f.Fuzz(func(t *testing.T, s string) {
		fl := &fromLines{r: bufio.NewReaderSize(strings.NewReader(s), 16)}
		want := 0
		for _, l := range strings.SplitAfter(s, "\n") {
			if strings.HasPrefix(l, "From ") {
				want++
			}
		}
		n := 0
		for {
			line, ok := fl.nextLine()
			if !ok {
				break
			}
			parseFromDate(line)
			if n++; n > want {
				t.Fatalf("more than %d From lines", want)
			}
		}
		if n != want {
			t.Fatalf("%d From lines, want %d", n, want)
		}
	})
}
