package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/mailkeep/mailkeep/restore"
)

// labelsUsage is the help of --labels (restore and export).
const labelsUsage = `what becomes of Gmail labels where the destination is not Gmail: "folders" (a copy of the message in a folder per label; \Inbox to INBOX, \Sent and \Draft to the Sent and Drafts folders, \Starred the \Flagged flag), "keywords" (each message once, its labels as keywords $label-NAME) or "none"; onto Gmail, labels are restored as labels`

// exportLabelsUsage is the help of export's --labels.
const exportLabelsUsage = `what becomes of Gmail labels: "folders" (a copy of the message in a folder per label; \Inbox to INBOX, \Sent and \Draft to [Gmail]/Sent Mail and [Gmail]/Drafts, \Starred the \Flagged flag), "keywords" (each message once, its labels as keywords $label-NAME: dovecot-keywords in Maildir, X-Keywords in mbox) or "none"`

// registerLabels adds --labels.
func registerLabels(fs *flag.FlagSet, v *string) {
	fs.StringVar(v, "labels", restore.LabelsFolders, labelsUsage)
}

// checkLabels validates --labels.
func checkLabels(mode string) error {
	if err := restore.CheckLabelsMode(mode); err != nil {
		return usageErr("--labels: %v", err)
	}
	return nil
}

// reportLabels puts what became of Gmail labels onto Gmail in the summary
// and names each refused label on stderr.
func reportLabels(stderr io.Writer, sum *restoreSummary, st restore.Stats) {
	sum.LabelsStored, sum.LabelsRefused = st.LabelsStored, st.LabelsRefused
	for _, lr := range st.LabelsRefused {
		fmt.Fprintf(stderr, "mailkeep restore: %s\n", lr)
	}
}
