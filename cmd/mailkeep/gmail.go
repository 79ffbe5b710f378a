package main

import "flag"

// gmailVar registers --gmail (config: gmail): Gmail mode, on by default
// where the server offers X-GM-EXT-1; --gmail=false backs a Gmail account
// up folder by folder.
func gmailVar(fs *flag.FlagSet, on *bool) {
	fs.BoolVar(on, "gmail", true, "Gmail mode where the server offers X-GM-EXT-1: All Mail, Spam and Trash stored once with each message's labels, label folders as views (--gmail=false: folder by folder)")
}
