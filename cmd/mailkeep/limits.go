package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/mailkeep/mailkeep/fetch"
	"github.com/mailkeep/mailkeep/provlimit"
)

// budgetVars registers --max-bytes-per-run and --max-messages-per-run
// (config: max_bytes_per_run, max_messages_per_run).
func budgetVars(fs *flag.FlagSet, b *provlimit.Budget) {
	fs.Func("max-bytes-per-run", "stop the backup cleanly (outcome partial) once this many message bytes were fetched; the next run continues (0: no bound)", budgetNum(&b.MaxBytes))
	fs.Func("max-messages-per-run", "stop the backup cleanly (outcome partial) once this many messages were fetched; the next run continues (0: no bound)", budgetNum(&b.MaxMessages))
}

// restoreBudgetVars registers restore's --max-bytes-per-run and
// --max-messages-per-run (restore.Options.Budget).
func restoreBudgetVars(fs *flag.FlagSet, b *provlimit.Budget) {
	fs.Func("max-bytes-per-run", "stop the restore cleanly (outcome partial) before appending more than this many message bytes; the next run resumes (0: no bound; Gmail takes about 500 MB a day)", budgetNum(&b.MaxBytes))
	fs.Func("max-messages-per-run", "stop the restore cleanly (outcome partial) before appending more than this many messages; the next run resumes (0: no bound)", budgetNum(&b.MaxMessages))
}

func budgetNum(p *int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("want a number, 0 (no bound) or more, not %q", v)
		}
		*p = n
		return nil
	}
}

// stoppedSummary copies why a run stopped early, and what is left, into
// the summary.
func stoppedSummary(sum *summary, st fetch.Stats) {
	if st.Stopped == nil {
		return
	}
	r := st.Remaining
	sum.Stopped, sum.Remaining = st.Stopped.Error(), &r
}

// printRemaining is the summary's line about a run stopped early.
func printRemaining(w io.Writer, name string, sum summary) {
	if sum.Remaining == nil {
		return
	}
	fmt.Fprintf(w, "mailkeep backup %s: stopped early: %s; the next run continues\n", name, sum.Remaining)
}
