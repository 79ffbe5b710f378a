package main

import (
	"encoding/json"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
)

// TestHelpEveryCommand: "mailkeep help CMD", "CMD --help" and "CMD -h"
// print the same help on stdout and exit 0; it names every flag of the
// command's FlagSet with its --long name, and has examples, environment
// and exit codes.
func TestHelpEveryCommand(t *testing.T) {
	for _, c := range commands {
		t.Run(c.name, func(t *testing.T) {
			want := runCLI("help", c.name)
			if want.code != 0 || want.stderr != "" {
				t.Fatalf("help %s: exit %d, stderr %q", c.name, want.code, want.stderr)
			}
			for _, args := range [][]string{{c.name, "--help"}, {c.name, "-h"}} {
				if c.name == "help" {
					continue
				}
				r := runCLI(args...)
				if r.code != 0 || r.stdout != want.stdout {
					t.Errorf("%q: exit %d, stdout differs from 'help %s':\n%s", args, r.code, c.name, r.stdout)
				}
			}
			out := want.stdout
			for _, s := range []string{"mailkeep " + c.name + ": " + c.summary, "Usage:\n  mailkeep " + c.name, "Examples:", "Environment:", "MAILKEEP_CPUPROFILE", "Exit codes:", "130"} {
				if !strings.Contains(out, s) {
					t.Errorf("help lacks %q:\n%s", s, out)
				}
			}
			flagsOf(c).VisitAll(func(f *flag.Flag) {
				if !regexp.MustCompile(`(?m)^  --` + regexp.QuoteMeta(f.Name) + `\b`).MatchString(out) {
					t.Errorf("help does not list --%s", f.Name)
				}
				if d := f.DefValue; d != "" && d != "false" && d != "0" && d != "0s" && !strings.Contains(out, "(default "+d+")") {
					t.Errorf("help lacks the default %q of --%s", d, f.Name)
				}
			})
		})
	}
	// The commands that log in name the password variable.
	if r := runCLI("help", "backup"); !strings.Contains(r.stdout, "MAILKEEP_PASSWORD") {
		t.Errorf("backup help lacks MAILKEEP_PASSWORD:\n%s", r.stdout)
	}
	if r := runCLI("serve", "--help"); !strings.Contains(r.stdout, "MAILKEEP_SERVE_PASSWORD") {
		t.Errorf("serve help lacks MAILKEEP_SERVE_PASSWORD")
	}
	if r := runCLI("help", "--help"); r.code != 0 || !strings.Contains(r.stdout, "mailkeep help: ") {
		t.Errorf("help --help: exit %d %q", r.code, r.stdout)
	}
	// Flags after an argument: help still wins.
	if r := runCLI("cat", "INBOX", "4", "--help"); r.code != 0 || !strings.Contains(r.stdout, "Usage:") {
		t.Errorf("cat INBOX 4 --help: exit %d %q", r.code, r.stdout)
	}
}

// TestOverview: "mailkeep help" lists every command on stdout (exit 0);
// "mailkeep" alone lists them on stderr and exits 2.
func TestOverview(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"help"}, 0}, {[]string{"--help"}, 0}, {[]string{"-h"}, 0}, {nil, 2}} {
		r := runCLI(tc.args...)
		out := r.stdout
		if tc.code != 0 {
			out = r.stderr
		}
		if r.code != tc.code {
			t.Errorf("%q: exit %d, want %d", tc.args, r.code, tc.code)
		}
		for _, c := range commands {
			if !regexp.MustCompile(`(?m)^  ` + c.name + ` +` + regexp.QuoteMeta(c.summary) + `$`).MatchString(out) {
				t.Errorf("%q: %s not listed:\n%s", tc.args, c.name, out)
			}
		}
	}
}

// TestDidYouMean: an unknown command or flag exits 2 and names the
// nearest one.
func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bakcup"}, `unknown command "bakcup" (did you mean "backup"?)`},
		{[]string{"verfy"}, `(did you mean "verify"?)`},
		{[]string{"serach", "x"}, `(did you mean "search"?)`},
		{[]string{"ls", "--foldr", "x"}, `unknown flag --foldr (did you mean --folder?)`},
		{[]string{"backup", "alice", "--verbos"}, `(did you mean --verbose?)`},
		{[]string{"cat", "INBOX", "4", "--archiv", "d"}, `(did you mean --archive?)`},
		{[]string{"restore", "--dryrun"}, `(did you mean --dry-run?)`},
		{[]string{"help", "expotr"}, `(did you mean "export"?)`},
		{[]string{"completion", "bsh"}, `(did you mean "bash"?)`},
	} {
		r := runCLI(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
	if r := runCLI("ls", "--zzzzzzzz"); r.code != exitUsage || strings.Contains(r.stderr, "did you mean") {
		t.Errorf("far-off flag: exit %d %q", r.code, r.stderr)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"abc", "abc", 0}, {"bakcup", "backup", 1}, {"kitten", "sitting", 3}, {"", "ls", 2}, {"foldr", "folder", 1}} {
		if got := editDistance(tc.a, tc.b); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
}

// TestInterspersed: flags before and after positional arguments, values
// in the next word or after "=", "--" ending the flags.
func TestInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("t", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	archive := fs.String("archive", "", "")
	verbose := fs.Bool("verbose", false, "")
	for _, tc := range []struct {
		in      []string
		archive string
		verbose bool
		pos     []string
	}{
		{[]string{"alice", "--verbose"}, "", true, []string{"alice"}},
		{[]string{"INBOX", "4", "--archive", "D"}, "D", false, []string{"INBOX", "4"}},
		{[]string{"--archive=D", "INBOX", "-verbose", "4"}, "D", true, []string{"INBOX", "4"}},
		{[]string{"INBOX", "--", "--verbose", "-x"}, "", false, []string{"INBOX", "--verbose", "-x"}},
		{[]string{"-", "--verbose=false"}, "", false, []string{"-"}},
	} {
		*archive, *verbose = "", false
		code, ok := parse(fs, tc.in)
		if !ok {
			t.Errorf("%q: parse failed (%d)", tc.in, code)
			continue
		}
		if *archive != tc.archive || *verbose != tc.verbose || !reflect.DeepEqual(fs.Args(), tc.pos) && len(tc.pos)+fs.NArg() > 0 {
			t.Errorf("%q: archive %q verbose %v args %q, want %q %v %q", tc.in, *archive, *verbose, fs.Args(), tc.archive, tc.verbose, tc.pos)
		}
	}
}

// everyFlag lists "cmd --flag" for every flag of every command.
func everyFlag() map[string][]string {
	out := map[string][]string{}
	for _, c := range commands {
		out[c.name] = nil
		flagsOf(c).VisitAll(func(f *flag.Flag) { out[c.name] = append(out[c.name], f.Name) })
	}
	return out
}

// TestCompletion: the bash, zsh and fish scripts name every command and
// every flag; bash -n (and zsh -n when installed) accepts them.
func TestCompletion(t *testing.T) {
	all := everyFlag()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		t.Run(sh, func(t *testing.T) {
			r := runCLI("completion", sh)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			s := r.stdout
			for cmd, flags := range all {
				var sect string
				switch sh {
				case "bash":
					m := regexp.MustCompile(`(?m)^    ` + cmd + `\) flags="([^"]*)"`).FindStringSubmatch(s)
					if m == nil {
						t.Fatalf("no case for %s", cmd)
					}
					sect = m[1] + " "
				case "zsh":
					if !strings.Contains(s, "    '"+cmd+":") {
						t.Errorf("command %s not described", cmd)
					}
					i := strings.Index(s, "\n    "+cmd+")\n")
					if i < 0 {
						t.Fatalf("no case for %s", cmd)
					}
					sect = s[i : i+strings.Index(s[i:], ";;")]
				case "fish":
					if !strings.Contains(s, "__fish_use_subcommand -a "+cmd+" ") {
						t.Errorf("command %s not described", cmd)
					}
					for _, l := range strings.Split(s, "\n") {
						if strings.Contains(l, "'__fish_seen_subcommand_from "+cmd+"'") {
							sect += l + "\n"
						}
					}
				}
				for _, f := range flags {
					var ok bool
					switch sh {
					case "bash":
						ok = strings.Contains(sect, "--"+f+" ")
					case "zsh":
						ok = regexp.MustCompile(`'\*?--` + regexp.QuoteMeta(f) + `\[`).MatchString(sect)
					case "fish":
						ok = strings.Contains(sect, " -l "+f+" ")
					}
					if !ok {
						t.Errorf("%s: --%s of %s missing", sh, f, cmd)
					}
				}
			}
			shell := sh
			if sh == "fish" {
				shell = "" // fish is not installed here: the checks above are all
			}
			if shell == "" {
				return
			}
			path, err := exec.LookPath(shell)
			if err != nil {
				if sh == "bash" {
					t.Fatal("bash not found")
				}
				t.Logf("%s not installed: syntax not checked", sh)
				return
			}
			cmd := exec.Command(path, "-n")
			cmd.Stdin = strings.NewReader(s)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s -n: %v\n%s", sh, err, out)
			}
		})
	}
	// The bash function completes a command name and a flag when run.
	if bash, err := exec.LookPath("bash"); err == nil {
		script := runCLI("completion", "bash").stdout + `
COMP_WORDS=(mailkeep ba); COMP_CWORD=1; _mailkeep; echo "${COMPREPLY[*]}"
COMP_WORDS=(mailkeep ls --fo); COMP_CWORD=2; _mailkeep; echo "${COMPREPLY[*]}"
`
		out, err := exec.Command(bash, "-c", script).CombinedOutput()
		if err != nil || string(out) != "backup\n--folder\n" {
			t.Errorf("bash completion: %v %q", err, out)
		}
	}
	if r := runCLI("completion"); r.code != exitUsage {
		t.Errorf("completion without a shell: exit %d", r.code)
	}
}

// TestManPage: the roff page has the sections of a man page, a .SS per
// command, every flag, the exit codes and the environment; only known
// macros start lines; groff (when installed) renders it without warnings.
func TestManPage(t *testing.T) {
	r := runCLI("man")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	s := r.stdout
	if !strings.HasPrefix(s, ".TH MAILKEEP 1 ") {
		t.Errorf("no .TH first: %.40q", s)
	}
	var sections []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, ".SH ") {
			sections = append(sections, strings.TrimPrefix(l, ".SH "))
		}
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			macro, _, _ := strings.Cut(l, " ")
			switch macro {
			case ".TH", ".SH", ".SS", ".PP", ".TP", ".B", ".I", ".nf", ".fi", ".RS", ".RE":
			default:
				t.Errorf("unknown macro line %q", l)
			}
		}
	}
	want := []string{"NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "ENVIRONMENT", "EXIT STATUS", "FILES", "SEE ALSO"}
	if !reflect.DeepEqual(sections, want) {
		t.Errorf("sections %q, want %q", sections, want)
	}
	for cmd, flags := range everyFlag() {
		i := strings.Index(s, "\n.SS "+cmd+"\n")
		if i < 0 {
			t.Errorf("no .SS %s", cmd)
			continue
		}
		sect := s[i+1:]
		if j := strings.Index(sect[4:], "\n.SS "); j >= 0 {
			sect = sect[:j+4]
		}
		for _, f := range flags {
			if !strings.Contains(sect, `.B \-\-`+strings.ReplaceAll(f, "-", `\-`)) {
				t.Errorf("%s: --%s missing", cmd, f)
			}
		}
	}
	for _, s2 := range []string{".B MAILKEEP_PASSWORD", ".B MAILKEEP_SERVE_PASSWORD", ".B XDG_CONFIG_HOME", ".B 11\n", ".B 130\n"} {
		if !strings.Contains(s, s2) {
			t.Errorf("man page lacks %q", s2)
		}
	}
	if groff, err := exec.LookPath("groff"); err == nil {
		cmd := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
		cmd.Stdin = strings.NewReader(s)
		if out, err := cmd.CombinedOutput(); err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
}

// TestVersionFromBuildInfo clones this checkout (go stamps the revision
// only where .git is a directory, not in a git worktree), builds the
// binary there with VCS stamping and checks that "mailkeep version"
// prints the revision and its time, then "+modified" once the tree
// changes; never "dev".
func TestVersionFromBuildInfo(t *testing.T) {
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatal("git not found")
	}
	top, err := exec.Command(git, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("not a git checkout: %v (CI runs from one)", err)
		}
		t.Skipf("not a git checkout: %v", err)
	}
	rev, err := exec.Command(git, "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "src")
	if out, err := exec.Command(git, "clone", "-q", "--no-hardlinks", strings.TrimSpace(string(top)), src).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	if out, err := exec.Command(git, "-C", src, "checkout", "-q", strings.TrimSpace(string(rev))).CombinedOutput(); err != nil {
		t.Fatalf("git checkout: %v\n%s", err, out)
	}
	version := func() string {
		exe := filepath.Join(t.TempDir(), "mailkeep")
		build := exec.Command("go", "build", "-buildvcs=true", "-o", exe, "./cmd/mailkeep")
		build.Dir = src
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
		out, err := exec.Command(exe, "version").Output()
		if err != nil {
			t.Fatal(err)
		}
		return string(out)
	}
	re := regexp.MustCompile(`^mailkeep \S+ ` + strings.TrimSpace(string(rev)) + `(\+modified)? (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ) go1\.\S+\n$`)
	v := version()
	if m := re.FindStringSubmatch(v); m == nil || m[1] != "" {
		t.Fatalf("clean tree: version %q does not match %s", v, re)
	}
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("changed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	v = version()
	if m := re.FindStringSubmatch(v); m == nil || m[1] != "+modified" {
		t.Fatalf("modified tree: version %q lacks +modified", v)
	}
}

// TestFormatVersion: the version line from build information.
func TestFormatVersion(t *testing.T) {
	for _, tc := range []struct {
		bi   debug.BuildInfo
		want string
	}{
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}}, "v1.2.3 go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "true"}}},
			"(devel) abc123+modified 2026-12-01T10:00:00Z go1.26.8"},
		{debug.BuildInfo{GoVersion: "go1.26.8", Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "false"}}}, "(devel) abc go1.26.8"},
	} {
		if got := formatVersion(&tc.bi); got != tc.want {
			t.Errorf("formatVersion = %q, want %q", got, tc.want)
		}
	}
	if r := runCLI("--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "mailkeep ") || strings.Contains(r.stdout, "dev\n") {
		t.Errorf("--version: %d %q", r.code, r.stdout)
	}
}

// TestReadersTakeNameAndFolderCase: ls, cat and show take a config
// account NAME as backup does, flags after the arguments, --json for ls,
// and find INBOX whatever its case; other folders by exact name or one
// case-insensitive match.
func TestReadersTakeNameAndFolderCase(t *testing.T) {
	dir, _ := exportArchive(t)
	cfg := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(cfg, []byte("[[account]]\nname = \"alice\"\nimap = \"imaps://alice@mail.example.org\"\npassword_env = \"MAILKEEP_TEST_NOPE\"\narchive = \""+dir+"\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	byDir := runCLI("ls", "--archive", dir)
	byName := runCLI("ls", "alice", "--config", cfg)
	if byDir.code != 0 || byName.code != 0 || byDir.stdout != byName.stdout || !strings.Contains(byDir.stdout, "Work/Sub") {
		t.Fatalf("ls by dir %+v, by name %+v", byDir, byName)
	}
	r := runCLI("ls", "alice", "--config", cfg, "--json")
	var folders []lsFolderJSON
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var f lsFolderJSON
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("ls --json line %q: %v", l, err)
		}
		folders = append(folders, f)
	}
	if len(folders) != 2 || folders[0].Folder != "INBOX" || folders[0].Messages == 0 {
		t.Fatalf("ls --json: %+v", folders)
	}
	inbox := runCLI("ls", "--archive", dir, "--folder", "INBOX")
	for _, name := range []string{"inbox", "Inbox", "INBOX"} {
		if r := runCLI("ls", "--folder", name, "--archive", dir); r.code != 0 || r.stdout != inbox.stdout {
			t.Errorf("ls --folder %s: exit %d %q", name, r.code, r.stderr)
		}
	}
	if r := runCLI("ls", "--archive", dir, "--folder", "work/sub"); r.code != 0 || !strings.Contains(r.stdout, "UID") {
		t.Errorf("ls --folder work/sub (one case-insensitive match): exit %d %q", r.code, r.stderr)
	}
	if r := runCLI("ls", "--archive", dir, "--folder", "Nope"); r.code != exitFailed {
		t.Errorf("ls --folder Nope: exit %d", r.code)
	}
	r = runCLI("ls", "--archive", dir, "--folder", "inbox", "--json")
	var m lsMessageJSON
	first, _, _ := strings.Cut(r.stdout, "\n")
	if err := json.Unmarshal([]byte(first), &m); err != nil || m.Folder != "INBOX" || m.ID == "" || len(m.SHA256) != 64 {
		t.Fatalf("ls --folder --json: %v %q", err, first)
	}
	// cat: flags after the arguments; NAME instead of --archive.
	want := runCLI("cat", "--archive", dir, "INBOX", m.ID)
	for _, args := range [][]string{
		{"cat", "INBOX", m.ID, "--archive", dir},
		{"cat", "inbox", m.ID, "--archive", dir},
		{"cat", "alice", "INBOX", m.ID, "--config", cfg},
		{"show", "--raw", "alice", "INBOX", m.ID, "--config", cfg},
	} {
		if r := runCLI(args...); r.code != 0 || r.stdout != want.stdout || want.code != 0 {
			t.Errorf("%q: exit %d %q", args, r.code, r.stderr)
		}
	}
	if r := runCLI("show", "alice", "inbox", m.ID, "--config", cfg); r.code != 0 || !strings.Contains(r.stdout, "Subject") {
		t.Errorf("show NAME: exit %d %q", r.code, r.stderr)
	}
	if r := runCLI("cat", "--archive", dir, "alice", "INBOX", m.ID); r.code != exitUsage {
		t.Errorf("cat with both --archive and NAME: exit %d", r.code)
	}
}

// TestSummariesNameArchive: the one-line summary at the end names the
// archive (verify --archive DIR already starts with it).
func TestSummariesNameArchive(t *testing.T) {
	dir, _ := exportArchive(t)
	r := runCLI("export", "--archive", dir, "--to", filepath.Join(t.TempDir(), "out"), "--format", "eml")
	if r.code != 0 || !strings.Contains(r.stderr, "s, archive "+dir+"\n") {
		t.Errorf("export: exit %d, summary %q does not name the archive", r.code, r.stderr)
	}
	r = runCLI("verify", "--archive", dir)
	if r.code != 0 || !strings.Contains(r.stderr, "mailkeep verify "+dir+": ok") || strings.Contains(r.stderr, ", archive ") {
		t.Errorf("verify: exit %d, summary %q", r.code, r.stderr)
	}
}
