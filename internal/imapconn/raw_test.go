package imapconn

import "testing"

func TestMailbox(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":             `"INBOX"`,
		"Größe":             `"Gr&APYA3w-e"`,
		"日本語":               `"&ZeVnLIqe-"`,
		"a&b":               `"a&-b"`,
		`quo"te\back`:       `"quo\"te\\back"`,
		"Archiv/Größe & Co": `"Archiv/Gr&APYA3w-e &- Co"`,
	} {
		if got := Mailbox(in); got != want {
			t.Errorf("Mailbox(%q) = %s, want %s", in, got, want)
		}
	}
}
