package gmailext_test

import (
	"fmt"
	"testing"

	"github.com/mailkeep/mailkeep/internal/gmailext"
	"github.com/mailkeep/mailkeep/provlimit"
)

// TestStatusErrorIsClassified: provlimit classifies a Gmail answer read on
// the raw connection as it does go-imap's, through the wrapping too.
func TestStatusErrorIsClassified(t *testing.T) {
	for _, tc := range []struct {
		se   gmailext.StatusError
		want provlimit.Kind
	}{
		{gmailext.StatusError{Command: "UID STORE", Status: "NO", Code: "ALERT", Text: "Account exceeded command or bandwidth limits. (Failure)"}, provlimit.DailyLimit},
		{gmailext.StatusError{Command: "UID FETCH", Status: "NO", Code: "THROTTLED", Text: "slow down"}, provlimit.Throttled},
		{gmailext.StatusError{Command: "UID STORE", Status: "NO", Text: "Invalid label"}, provlimit.None},
	} {
		err := fmt.Errorf("folder %q: %w", "Work", &tc.se)
		if got := provlimit.KindOf(err); got != tc.want {
			t.Errorf("%v: kind %v, want %v", tc.se.Error(), got, tc.want)
		}
	}
}
