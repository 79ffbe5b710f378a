package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// The command line stays on the standard flag package: every documented
// spelling (--long, -long, --flag=value, repeatable flags, flag.Func
// values) already works with it, and the other branches add flags with
// one fs.XxxVar line. What it lacks is added here, over flag.FlagSet:
// flags after positional arguments (interspersed), "did you mean", help
// with examples, environment and exit codes, completion and a man page.
// cobra or urfave/cli would bring these, but would change how every
// command registers its flags and how single-dash long flags parse.

// command is one entry of the command table: help, "did you mean",
// shell completion and the man page are all generated from it and from
// the flags its options register (flagsOf).
type command struct {
	name     string
	summary  string   // one line, no trailing period
	usage    []string // usage lines after "mailkeep "
	examples []string
	env      []string // environment variables the command reads, beyond envCommon
	run      func(ctx context.Context, args []string, stdout, stderr io.Writer) int
	// opts gives a fresh options value whose register defines the flags
	// help, completion and the man page list; nil for a command without
	// flags.
	opts func() options
}

// envPassword documents the password variables of the commands that log in.
var envPassword = []string{
	"MAILKEEP_PASSWORD\tthe server password when neither --password-file nor --password-command is given (a config account's password_env names another variable)",
}

// envConfig documents the variables of the commands that read the config file.
var envConfig = []string{
	"XDG_CONFIG_HOME\twhere the default config file lives ($XDG_CONFIG_HOME/mailkeep/config.toml, else ~/.config/mailkeep/config.toml)",
	"XDG_DATA_HOME\tthe config file's default archive_root ($XDG_DATA_HOME/mailkeep, else ~/.local/share/mailkeep)",
}

// envCommon are read by every command.
var envCommon = []string{
	"MAILKEEP_CPUPROFILE\twrite a CPU profile to this file (benchmarks)",
}

// commands is the command table, in the order help lists them.
var commands []*command

func init() {
	commands = []*command{
		{name: "backup", summary: "back up IMAP or POP3 accounts into archives",
			usage: []string{"backup --imap URL | --pop3 URL --archive DIR [options]", "backup [--config FILE] [NAME...]"},
			examples: []string{
				"MAILKEEP_PASSWORD=secret mailkeep backup --imap imaps://alice@mail.example.com --archive ~/mail-archive",
				"mailkeep backup alice --verbose",
				"mailkeep backup --config ~/backup.toml --json"},
			env: append(append([]string{}, envPassword...), envConfig...), run: cmdBackup, opts: func() options { return &backupOpts{} }},
		{name: "check", summary: "show what a backup would fetch, writing nothing",
			usage:    []string{"check [--config FILE] [NAME...]", "check --imap URL | --pop3 URL [--archive DIR]"},
			examples: []string{"mailkeep check", "mailkeep check alice --json"},
			env:      append(append([]string{}, envPassword...), envConfig...), run: cmdCheck, opts: func() options { return &checkOpts{} }},
		{name: "restore", summary: "upload an archive's messages to an IMAP server",
			usage:    []string{"restore --archive DIR --imap URL [options]", "restore --account NAME [--archive DIR] [options]", "restore --from-mbox FILE | --from-maildir DIR --folder NAME --imap URL"},
			examples: []string{"mailkeep restore --archive ~/mail-archive --imap imaps://alice@new.example.com --dry-run", "mailkeep restore --archive ~/mail-archive --imap imaps://alice@new.example.com --prefix Restored/2026", "mailkeep restore --account alice-new --archive ~/mail-archive"},
			env:      append(append([]string{}, envPassword...), envConfig...), run: cmdRestore, opts: func() options { return &restoreOpts{} }},
		{name: "verify", summary: "read every message back and check it against its SHA-256",
			usage:    []string{"verify --archive DIR [--server]", "verify [--config FILE] [NAME...] [--server]"},
			examples: []string{"mailkeep verify --archive ~/mail-archive", "mailkeep verify alice --server"},
			env:      append(append([]string{}, envPassword...), envConfig...), run: cmdVerify, opts: func() options { return &verifyOpts{} }},
		{name: "export", summary: "write an archive out as mbox, Maildir or .eml files",
			usage:    []string{"export --archive DIR | NAME --to PATH --format mbox|maildir|eml [--folder GLOB] [--as-of T]"},
			examples: []string{"mailkeep export --archive ~/mail-archive --to /tmp/out --format maildir", "mailkeep export alice --to inbox.mbox --format mbox --folder INBOX"},
			env:      envConfig, run: cmdExport, opts: func() options { return &exportOpts{} }},
		{name: "auth", summary: "authorize an oauth2 account once",
			usage:    []string{"auth [--config FILE] NAME"},
			examples: []string{"mailkeep auth work"},
			env:      envConfig, run: cmdAuth, opts: func() options { return &authOpts{} }},
		{name: "reindex", summary: "rebuild a lost or damaged catalog from the archive files",
			usage:    []string{"reindex --archive DIR", "reindex [--config FILE] NAME..."},
			examples: []string{"mailkeep reindex --archive ~/mail-archive"},
			env:      envConfig, run: cmdReindex, opts: func() options { return &reindexOpts{} }},
		{name: "ls", summary: "list an archive's folders, or one folder's messages",
			usage:    []string{"ls --archive DIR | NAME [--folder F] [--expunged] [--json]"},
			examples: []string{"mailkeep ls --archive ~/mail-archive", "mailkeep ls alice --folder inbox", "mailkeep ls alice --json"},
			env:      envConfig, run: cmdLs, opts: func() options { return &lsOpts{} }},
		{name: "cat", summary: "print one archived message as stored, checked against its SHA-256",
			usage:    []string{"cat --archive DIR | NAME FOLDER UID"},
			examples: []string{"mailkeep cat --archive ~/mail-archive INBOX 4", "mailkeep cat INBOX 4 --archive ~/mail-archive", "mailkeep cat alice INBOX 4"},
			env:      envConfig, run: cmdCat, opts: func() options { return &catOpts{} }},
		{name: "index", summary: "build or update the full-text search index",
			usage:    []string{"index --archive DIR", "index [--config FILE] [NAME...]"},
			examples: []string{"mailkeep index --archive ~/mail-archive", "mailkeep index"},
			env:      envConfig, run: cmdIndex, opts: func() options { return &indexOpts{} }},
		{name: "search", summary: "search archived messages",
			usage:    []string{"search [--archive DIR | NAME...] [--json] [--limit N] QUERY..."},
			examples: []string{"mailkeep search --archive ~/mail-archive invoice from:bob", "mailkeep search alice --json 'subject:meeting'"},
			env:      envConfig, run: cmdSearch, opts: func() options { return &searchOpts{} }},
		{name: "show", summary: "print one archived message for a person to read",
			usage:    []string{"show --archive DIR | NAME [--attachments DIR] [--raw] FOLDER UID"},
			examples: []string{"mailkeep show --archive ~/mail-archive INBOX 4", "mailkeep show alice INBOX 4 --attachments /tmp/att"},
			env:      envConfig, run: cmdShow, opts: func() options { return &showOpts{} }},
		{name: "serve", summary: "serve archives read-only over IMAP",
			usage:    []string{"serve [--archive DIR | NAME...] [--listen 127.0.0.1:1143] [--as-of T] [--include-expunged]"},
			examples: []string{"mailkeep serve --archive ~/mail-archive", "MAILKEEP_SERVE_PASSWORD=pw mailkeep serve alice --listen 127.0.0.1:1143"},
			env:      append([]string{"MAILKEEP_SERVE_PASSWORD\tthe password IMAP clients log in with"}, envConfig...), run: cmdServe, opts: func() options { return &serveOpts{} }},
		{name: "version", summary: "print the version, VCS revision and build time",
			usage: []string{"version"}, examples: []string{"mailkeep version"}, run: cmdVersion},
		{name: "help", summary: "list the commands, or describe one",
			usage: []string{"help [COMMAND]"}, examples: []string{"mailkeep help", "mailkeep help backup"}, run: cmdHelp},
		{name: "completion", summary: "print a shell completion script (bash, zsh or fish)",
			usage: []string{"completion bash|zsh|fish"},
			examples: []string{
				"source <(mailkeep completion bash)",
				"mailkeep completion zsh > \"${fpath[1]}/_mailkeep\"",
				"mailkeep completion fish > ~/.config/fish/completions/mailkeep.fish"},
			run: cmdCompletion},
		{name: "man", summary: "print the manual page (roff) on stdout",
			usage: []string{"man"}, examples: []string{"mailkeep man > mailkeep.1 && man -l mailkeep.1"}, run: cmdMan},
	}
}

func lookupCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// flagsOf returns the FlagSet c's options register, as help, completion
// and the man page show it; commands without flags (help, version,
// completion, man) give an empty set.
func flagsOf(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("mailkeep "+c.name, flag.ContinueOnError)
	if c.opts != nil {
		c.opts().register(fs)
	}
	return fs
}

// flagInfo is one flag as help, completion and the man page show it.
type flagInfo struct {
	name, arg, usage, def string
	isBool                bool
}

func flagInfos(fs *flag.FlagSet) []flagInfo {
	var out []flagInfo
	fs.VisitAll(func(f *flag.Flag) {
		arg, usage := flag.UnquoteUsage(f)
		fi := flagInfo{name: f.Name, usage: usage, isBool: isBoolFlag(f)}
		if !fi.isBool {
			fi.arg = metavar(f.Name, arg)
		}
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" && f.DefValue != "0s" {
			fi.def = f.DefValue
		}
		out = append(out, fi)
	})
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// metavars name the values of flags whose name says too little.
var metavars = map[string]string{
	"as-of": "TIME", "folder": "GLOB", "exclude": "GLOB", "timeout": "DURATION",
	"connections": "N", "log-format": "text|json", "tls-cert": "FILE", "tls-key": "FILE",
	"from-mbox": "FILE", "from-maildir": "DIR", "account": "NAME", "format": "FORMAT",
	"tls": "none", "prefix": "FOLDER",
}

// metavar names a flag's value in help: the backquoted word of its usage
// if any, else one derived from the flag's name and type.
func metavar(name, arg string) string {
	switch arg {
	case "string", "value", "":
	case "int", "uint", "int64", "uint64":
		return "N"
	default:
		return strings.ToUpper(arg)
	}
	if m, ok := metavars[name]; ok {
		return m
	}
	switch {
	case name == "archive" || name == "attachments" || strings.HasSuffix(name, "-dir"):
		return "DIR"
	case name == "config" || strings.HasSuffix(name, "-file"):
		return "FILE"
	case name == "imap" || name == "pop3":
		return "URL"
	case name == "listen" || strings.HasSuffix(name, "-addr") || strings.HasSuffix(name, "-listen"):
		return "ADDR"
	case name == "to":
		return "PATH"
	case strings.HasSuffix(name, "-command"):
		return "COMMAND"
	}
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_"))
}

func isBoolFlag(f *flag.Flag) bool {
	bf, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && bf.IsBoolFlag()
}

const exitCodesHelp = `  0    ok
  1    failed (the archive is as the last good run left it)
  2    usage or configuration error
  3    finished, but some messages or folders failed (each named on stderr)
  11   the archive is locked by another mailkeep run
  130  interrupted (SIGINT/SIGTERM); what was committed stays
`

// printCommandHelp writes cmd's help: description, usage, flags, examples,
// environment and exit codes.
func printCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "mailkeep %s: %s\n\nUsage:\n", c.name, c.summary)
	for _, u := range c.usage {
		fmt.Fprintf(w, "  mailkeep %s\n", u)
	}
	if fl := flagInfos(flagsOf(c)); len(fl) > 0 {
		fmt.Fprintln(w, "\nOptions:")
		for _, f := range fl {
			head := "--" + f.name
			if f.arg != "" {
				head += " " + f.arg
			}
			line := "  " + head
			if len(head) < 26 {
				line += strings.Repeat(" ", 26-len(head))
			} else {
				line += "\n" + strings.Repeat(" ", 28)
			}
			line += f.usage
			if f.def != "" {
				line += fmt.Sprintf(" (default %s)", f.def)
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintf(w, "  %-26s%s\n", "-h, --help", "show this help")
	}
	if len(c.examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range c.examples {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	env := append(append([]string{}, c.env...), envCommon...)
	fmt.Fprintln(w, "\nEnvironment:")
	for _, e := range env {
		k, v, _ := strings.Cut(e, "\t")
		fmt.Fprintf(w, "  %-24s %s\n", k, v)
	}
	fmt.Fprint(w, "\nExit codes:\n"+exitCodesHelp)
}

// printOverview lists the commands.
func printOverview(w io.Writer) {
	fmt.Fprint(w, "mailkeep: offline e-mail backup and restore\n\nUsage:\n  mailkeep COMMAND [options] [arguments]\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-11s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, "\nFlags go before or after the arguments; '--' ends them.\nRun 'mailkeep help COMMAND' or 'mailkeep COMMAND --help' for a command's options and examples.\n")
}

func cmdHelp(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch len(args) {
	case 0:
		printOverview(stdout)
		return exitOK
	case 1:
		if args[0] == "-h" || args[0] == "--help" || args[0] == "-help" {
			args[0] = "help"
		}
		if c := lookupCommand(args[0]); c != nil {
			printCommandHelp(stdout, c)
			return exitOK
		}
		unknownCommand(stderr, args[0])
		return exitUsage
	}
	fmt.Fprintln(stderr, "usage: mailkeep help [COMMAND]")
	return exitUsage
}

// wantsHelp reports whether args ask for help (-h, --help, -help) before
// any "--".
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-help":
			return true
		}
	}
	return false
}

func unknownCommand(stderr io.Writer, name string) {
	names := make([]string, len(commands))
	for i, c := range commands {
		names[i] = c.name
	}
	fmt.Fprintf(stderr, "mailkeep: unknown command %q", name)
	if s := suggest(name, names); s != "" {
		fmt.Fprintf(stderr, " (did you mean %q?)", s)
	}
	fmt.Fprint(stderr, "\nRun 'mailkeep help' for the list of commands.\n")
}

// suggest returns the candidate nearest to s by edit distance, if it is
// near enough to be a likely typo (or s is a prefix of exactly one).
func suggest(s string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := editDistance(strings.ToLower(s), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(1, min(3, len(s)/3)) {
		return best
	}
	var pre []string
	for _, c := range candidates {
		if len(s) >= 2 && strings.HasPrefix(c, s) {
			pre = append(pre, c)
		}
	}
	if len(pre) == 1 {
		return pre[0]
	}
	return ""
}

// editDistance is the Damerau (optimal string alignment) distance: a
// swapped pair of letters counts as one edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// options is the shape of a command: register adds its flags to the
// FlagSet (help, completion and the man page call it too), run does the
// work once they are parsed, and runOptions turns its error into the
// documented exit code (exitCode).
type options interface {
	register(fs *flag.FlagSet)
	run(ctx context.Context) error
}

// runOptions parses args into o's flags and runs it; an error is printed
// as "mailkeep NAME: error" and mapped to its exit code.
func runOptions(ctx context.Context, name string, o options, args []string, stderr io.Writer) int {
	fs := newFlagSet(name, stderr)
	o.register(fs)
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if err := o.run(ctx); err != nil {
		var st exitStatus
		if !errors.As(err, &st) {
			fmt.Fprintf(stderr, "mailkeep %s: %v\n", name, err)
		}
		return exitCode(err)
	}
	return exitOK
}

// exitStatus is the outcome of a command that has already said what went
// wrong (on stderr, and in its --json summary): backup, check, verify,
// restore... report each account's or folder's failure themselves and end
// with the worst one's exit code. runOptions prints nothing more for it.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// status turns an exit code into run's error: nil for exitOK, else an
// exitStatus.
func status(code int) error {
	if code == exitOK {
		return nil
	}
	return exitStatus(code)
}

// errUnknownFlag is a flag the command does not define.
var errUnknownFlag = errors.New("unknown flag")

// interspersed splits args into flag arguments (with their values) and
// positional ones, so flags may follow positional arguments; "--" ends
// the flags. A flag fs does not define is an error naming the nearest
// one.
func interspersed(fs *flag.FlagSet, args []string) (flags, pos []string, err error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return flags, append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		name, _, hasValue := strings.Cut(name, "=")
		if name == "h" || name == "help" {
			flags = append(flags, a)
			continue
		}
		f := fs.Lookup(name)
		if f == nil {
			var names []string
			fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
			hint := ""
			if s := suggest(name, names); s != "" {
				hint = fmt.Sprintf(" (did you mean --%s?)", s)
			}
			return nil, nil, usageError{fmt.Errorf("%w %s%s", errUnknownFlag, a, hint)}
		}
		flags = append(flags, a)
		if isBoolFlag(f) || hasValue {
			continue
		}
		if i+1 < len(args) {
			i++
			flags = append(flags, args[i])
		}
	}
	return flags, pos, nil
}
