// Package config reads mailkeep's TOML configuration file: the accounts a
// plain `mailkeep backup` runs, where their archives live and how each one
// logs in. Every problem is reported with the file and line it comes from;
// unknown keys are errors, so a typo never silently changes what is backed
// up.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2"

	"github.com/mailkeep/mailkeep/archive"
	"github.com/mailkeep/mailkeep/archive/mboxfile"
	"github.com/mailkeep/mailkeep/internal/account"
)

// Defaults.
const (
	DefaultParallel    = 2
	DefaultConnections = 4
	DefaultTimeout     = Duration(2 * time.Minute)
)

// Duration is a TOML string such as "90s" or "2m".
type Duration time.Duration

// UnmarshalText parses a Go duration ("90s", "2m").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("timeout %q: want a duration such as \"90s\" or \"2m\"", b)
	}
	*d = Duration(v)
	return nil
}

// MarshalText writes the duration as Go spells it.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// Config is a parsed configuration file.
type Config struct {
	// Path is the file the configuration was read from.
	Path string `toml:"-"`
	// ArchiveRoot holds one archive directory per account unless an
	// account names its own. Default: $XDG_DATA_HOME/mailkeep.
	ArchiveRoot string `toml:"archive_root"`
	// Parallel is how many accounts `mailkeep backup` runs at once.
	Parallel int `toml:"parallel"`
	// MetricsFile, when set, is written after every backup (Prometheus
	// text format); --metrics-file overrides it.
	MetricsFile string    `toml:"metrics_file"`
	Accounts    []Account `toml:"account"`
}

// Account is one [[account]] table.
type Account struct {
	Name string `toml:"name"`
	IMAP string `toml:"imap"` // imaps://USER@HOST[:PORT] or imap:// (STARTTLS)
	POP3 string `toml:"pop3"` // pop3s://USER@HOST[:PORT] or pop3:// (STLS)
	// TLS is "" (as the URL scheme says) or "none" (plaintext; loopback only).
	TLS    string `toml:"tls"`
	CAFile string `toml:"ca_file"`

	// Exactly one way to log in.
	PasswordEnv     string  `toml:"password_env"`
	PasswordFile    string  `toml:"password_file"`
	PasswordCommand string  `toml:"password_command"`
	OAuth2          *OAuth2 `toml:"oauth2"`

	Archive string `toml:"archive"` // default <archive_root>/<name>
	Format  string `toml:"format"`  // for a new archive; default mbox.zst
	// CompressionLevel is the level of new frames (zstd -1 to 22, gzip -3
	// to 9; 0 the default).
	CompressionLevel int      `toml:"compression_level"`
	Folders          []string `toml:"folders"` // globs; default every folder
	Exclude          []string `toml:"exclude"`
	Connections      int      `toml:"connections"`
	// Timeout is how long to wait for a byte from a server that owes an
	// answer ("2m", "30s"); default DefaultTimeout.
	Timeout Duration `toml:"timeout"`
	// MaxBytesPerRun and MaxMessagesPerRun bound what one backup run
	// downloads (0: no bound); the next run continues. IMAP only.
	MaxBytesPerRun    int64 `toml:"max_bytes_per_run"`
	MaxMessagesPerRun int64 `toml:"max_messages_per_run"`
	// Gmail, when false, turns Gmail mode off (a Gmail account is then
	// backed up folder by folder); unset or true: on where the server
	// offers X-GM-EXT-1. IMAP only.
	Gmail *bool `toml:"gmail"`

	// POP3 only.
	Delete   bool `toml:"delete"`
	KeepDays int  `toml:"keep_days"`
	NoUIDL   bool `toml:"no_uidl"`

	// Line is where the account's [[account]] header is.
	Line int `toml:"-"`
}

// OAuth2 is an account's [account.oauth2] table.
type OAuth2 struct {
	// Provider is google, microsoft or generic.
	Provider     string `toml:"provider"`
	ClientID     string `toml:"client_id"`
	ClientSecret string `toml:"client_secret"`
	// Endpoints; google and microsoft have built-in defaults.
	AuthURL       string   `toml:"auth_url"`
	TokenURL      string   `toml:"token_url"`
	DeviceAuthURL string   `toml:"device_auth_url"`
	Scopes        []string `toml:"scopes"`
	// Tenant is Microsoft's tenant (default "common").
	Tenant string `toml:"tenant"`
	// Flow is "loopback" (browser, PKCE) or "device"; default: loopback
	// for google, device for microsoft, loopback for generic unless only
	// device_auth_url is given.
	Flow string `toml:"flow"`
	// Mechanism is the SASL mechanism: xoauth2 (default) or oauthbearer.
	Mechanism string `toml:"mechanism"`
	// TokenFile stores the refresh token (0600); default
	// <config dir>/tokens/<account>.json.
	TokenFile string `toml:"token_file"`
	// TokenCommand, instead of all of the above, prints an access token.
	TokenCommand string `toml:"token_command"`
}

// DefaultPath is $XDG_CONFIG_HOME/mailkeep/config.toml (~/.config/...).
func DefaultPath() string {
	dir := os.Getenv("XDG_CONFIG_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".config")
	}
	return filepath.Join(dir, "mailkeep", "config.toml")
}

func defaultArchiveRoot() string {
	dir := os.Getenv("XDG_DATA_HOME")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".local", "share")
	}
	return filepath.Join(dir, "mailkeep")
}

// Error is a problem at a place in the file.
type Error struct {
	Path string
	Line int // 0: the file as a whole
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.Path, e.Line, e.Msg)
	}
	return e.Path + ": " + e.Msg
}

// Errors is every problem found in a file, in line order.
type Errors []*Error

func (es Errors) Error() string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = e.Error()
	}
	return strings.Join(s, "\n")
}

// Load reads and checks the file at path. warnings are problems that do not
// stop a run (a secret in a file others can read). The returned error is an
// Errors listing every problem, or the open error.
func Load(path string) (cfg *Config, warnings []string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil, fmt.Errorf("config %s: %w (write one, see README.md \"Configuration\", or give --config FILE)", path, err)
		}
		return nil, nil, fmt.Errorf("config: %w", err)
	}
	cfg, err = Parse(path, b)
	if err != nil {
		return nil, nil, err
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o077 != 0 {
		for _, a := range cfg.Accounts {
			if a.OAuth2 != nil && a.OAuth2.ClientSecret != "" {
				warnings = append(warnings, fmt.Sprintf("%s: holds account %q's client_secret but is readable by others (mode %04o): chmod 600 %s", path, a.Name, fi.Mode().Perm(), path))
			}
		}
	}
	for _, a := range cfg.Accounts {
		if a.PasswordFile != "" {
			if fi, err := os.Stat(a.PasswordFile); err == nil && fi.Mode().Perm()&0o077 != 0 {
				warnings = append(warnings, fmt.Sprintf("%s:%d: account %q: password_file %s is readable by others (mode %04o): chmod 600 %s", path, a.Line, a.Name, a.PasswordFile, fi.Mode().Perm(), a.PasswordFile))
			}
		}
	}
	return cfg, warnings, nil
}

// Parse decodes and checks a configuration read from path (used for
// messages and to resolve relative paths).
func Parse(path string, data []byte) (*Config, error) {
	cfg := &Config{Path: path}
	dec := toml.NewDecoder(bytes.NewReader(data)).DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return nil, decodeErrors(path, data, err)
	}
	c := &checker{path: path, pos: newPositions(data), base: filepath.Dir(path), seen: map[string]int{}}
	c.top(cfg)
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		a.Line = c.pos.account(i)
		where := fmt.Sprintf("account %q", a.Name)
		if a.Name == "" {
			where = fmt.Sprintf("account #%d", i+1)
		}
		c.name(cfg, i, a, where)
		c.server(cfg, i, a, where)
		c.storage(cfg, i, a, where)
		c.protocol(cfg, i, a, where)
		c.auth(cfg, i, a, where)
	}
	if len(c.errs) > 0 {
		sort.SliceStable(c.errs, func(i, j int) bool { return c.errs[i].Line < c.errs[j].Line })
		return nil, c.errs
	}
	return cfg, nil
}

// checker collects the errors of values that decoded but make no sense,
// each at its line.
type checker struct {
	path string
	pos  *positions
	base string         // the config's directory, for relative paths
	seen map[string]int // account names -> line
	errs Errors
}

func (c *checker) add(line int, format string, a ...any) {
	c.errs = append(c.errs, &Error{Path: c.path, Line: line, Msg: fmt.Sprintf(format, a...)})
}

// top checks and defaults the top-level keys.
func (c *checker) top(cfg *Config) {
	if cfg.Parallel == 0 {
		cfg.Parallel = DefaultParallel
	} else if cfg.Parallel < 1 || cfg.Parallel > 64 {
		c.add(c.pos.top("parallel"), "parallel = %d: want 1 to 64", cfg.Parallel)
	}
	if cfg.ArchiveRoot == "" {
		cfg.ArchiveRoot = defaultArchiveRoot()
	} else {
		cfg.ArchiveRoot = expand(c.base, cfg.ArchiveRoot)
	}
	if cfg.MetricsFile != "" {
		cfg.MetricsFile = expand(c.base, cfg.MetricsFile)
	}
	if len(cfg.Accounts) == 0 {
		c.add(0, "no accounts: add an [[account]] table")
	}
}

// name checks an account's name: present, well-formed, unique.
func (c *checker) name(cfg *Config, i int, a *Account, where string) {
	switch {
	case a.Name == "":
		c.add(a.Line, "%s: name is required", where)
	case !nameRE.MatchString(a.Name):
		c.add(c.pos.accountKey(i, "name"), "%s: name may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit", where)
	default:
		if first, dup := c.seen[a.Name]; dup {
			c.add(c.pos.accountKey(i, "name"), "%s: name already used by the account at line %d", where, first)
		}
		c.seen[a.Name] = a.Line
	}
}

// server checks the imap or pop3 URL and tls.
func (c *checker) server(cfg *Config, i int, a *Account, where string) {
	raw, key := a.IMAP, "imap"
	switch {
	case a.IMAP != "" && a.POP3 != "":
		c.add(c.pos.accountKey(i, "pop3"), "%s: give imap or pop3, not both", where)
	case a.IMAP == "" && a.POP3 == "":
		c.add(a.Line, "%s: give imap = \"imaps://USER@HOST\" or pop3 = \"pop3s://USER@HOST\"", where)
	case a.POP3 != "":
		raw, key = a.POP3, "pop3"
	}
	if raw != "" {
		s, err := account.ParseURL(raw, a.TLS)
		switch {
		case err != nil:
			l := c.pos.accountKey(i, key)
			if errors.Is(err, account.ErrTLSValue) {
				l, err = c.pos.accountKey(i, "tls"), fmt.Errorf("tls = %q: the only value is \"none\" (TLS is otherwise chosen by the URL scheme)", a.TLS)
			}
			c.add(l, "%s: %v", where, err)
		case string(s.Protocol) != key:
			c.add(c.pos.accountKey(i, key), "%s: %s = %q: scheme is not %s", where, key, raw, key)
		}
	}
}

// storage checks and defaults ca_file, the archive (format, compression_level), connections and timeout.
func (c *checker) storage(cfg *Config, i int, a *Account, where string) {
	if a.CAFile != "" {
		a.CAFile = expand(c.base, a.CAFile)
	}
	if a.Format != "" {
		if _, err := archive.ParseFormat(a.Format); err != nil {
			c.add(c.pos.accountKey(i, "format"), "%s: %v", where, err)
		}
	}
	if a.CompressionLevel != 0 {
		codec := mboxfile.CodecZstd
		switch a.Format {
		case "mbox.gz":
			codec = mboxfile.CodecGzip
		case "mbox", "maildir":
			codec = mboxfile.CodecNone
		case "":
			if a.CompressionLevel < -3 || a.CompressionLevel > 22 { // the archive's format decides the rest
				c.add(c.pos.accountKey(i, "compression_level"), "%s: compression_level = %d: want -1 to 22 (zstd) or -3 to 9 (gzip)", where, a.CompressionLevel)
			}
			codec = ""
		}
		if codec != "" {
			if err := mboxfile.CheckLevel(codec, a.CompressionLevel); err != nil {
				c.add(c.pos.accountKey(i, "compression_level"), "%s: compression_level: %v", where, err)
			}
		}
	}
	if a.Connections == 0 {
		a.Connections = DefaultConnections
	} else if a.Connections < 1 || a.Connections > 32 {
		c.add(c.pos.accountKey(i, "connections"), "%s: connections = %d: want 1 to 32", where, a.Connections)
	}
	if a.MaxBytesPerRun < 0 {
		c.add(c.pos.accountKey(i, "max_bytes_per_run"), "%s: max_bytes_per_run = %d: want 0 (no bound) or more", where, a.MaxBytesPerRun)
	}
	if a.MaxMessagesPerRun < 0 {
		c.add(c.pos.accountKey(i, "max_messages_per_run"), "%s: max_messages_per_run = %d: want 0 (no bound) or more", where, a.MaxMessagesPerRun)
	}
	if a.Timeout == 0 {
		a.Timeout = DefaultTimeout
	} else if a.Timeout < Duration(100*time.Millisecond) || a.Timeout > Duration(time.Hour) {
		c.add(c.pos.accountKey(i, "timeout"), "%s: timeout = %q: want 100ms to 1h", where, time.Duration(a.Timeout))
	}
	if a.Archive != "" {
		a.Archive = expand(c.base, a.Archive)
	} else if a.Name != "" {
		a.Archive = filepath.Join(cfg.ArchiveRoot, a.Name)
	}
}

// protocol refuses options of the other protocol.
func (c *checker) protocol(cfg *Config, i int, a *Account, where string) {
	if a.IMAP != "" {
		for _, k := range []struct {
			set bool
			key string
		}{{a.Delete, "delete"}, {a.KeepDays != 0, "keep_days"}, {a.NoUIDL, "no_uidl"}} {
			if k.set {
				c.add(c.pos.accountKey(i, k.key), "%s: %s is a POP3 option", where, k.key)
			}
		}
	}
	if a.POP3 != "" && a.Gmail != nil {
		c.add(c.pos.accountKey(i, "gmail"), "%s: gmail is an IMAP option", where)
	}
	if a.POP3 != "" && (len(a.Folders) > 0 || len(a.Exclude) > 0) {
		c.add(c.pos.accountKey(i, "folders"), "%s: folders and exclude are IMAP options (POP3 has only INBOX)", where)
	}
	if a.KeepDays < 0 {
		c.add(c.pos.accountKey(i, "keep_days"), "%s: keep_days must be positive", where)
	}
}

// auth checks that there is one way to log in, and the oauth2 table.
func (c *checker) auth(cfg *Config, i int, a *Account, where string) {
	auths := []string{}
	for _, k := range []struct {
		set bool
		key string
	}{{a.PasswordEnv != "", "password_env"}, {a.PasswordFile != "", "password_file"}, {a.PasswordCommand != "", "password_command"}, {a.OAuth2 != nil, "oauth2"}} {
		if k.set {
			auths = append(auths, k.key)
		}
	}
	switch len(auths) {
	case 0:
		c.add(a.Line, "%s: no credentials: set password_env, password_file, password_command or an [account.oauth2] table", where)
	case 1:
	default:
		c.add(c.pos.accountKey(i, auths[1]), "%s: give one of %s, not several", where, strings.Join(auths, ", "))
	}
	if a.PasswordFile != "" {
		a.PasswordFile = expand(c.base, a.PasswordFile)
	}
	if o := a.OAuth2; o != nil {
		checkOAuth2(o, a.Name, c.base, func(key, format string, args ...any) {
			c.add(c.pos.oauthKey(i, key), "%s: oauth2: "+format, append([]any{where}, args...)...)
		})
	}
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

func checkOAuth2(o *OAuth2, name, base string, add func(key, format string, a ...any)) {
	switch o.Mechanism {
	case "":
		o.Mechanism = "xoauth2"
	case "xoauth2", "oauthbearer":
	default:
		add("mechanism", "mechanism = %q: want xoauth2 or oauthbearer", o.Mechanism)
	}
	if o.TokenCommand != "" {
		for _, k := range []struct{ v, key string }{{o.Provider, "provider"}, {o.ClientID, "client_id"}, {o.TokenFile, "token_file"}} {
			if k.v != "" {
				add(k.key, "token_command replaces %s: give one or the other", k.key)
			}
		}
		return
	}
	switch o.Provider {
	case "google", "microsoft":
	case "generic":
		if o.TokenURL == "" {
			add("provider", "provider generic needs token_url")
		}
		if o.AuthURL == "" && o.DeviceAuthURL == "" {
			add("provider", "provider generic needs auth_url (browser flow) or device_auth_url (device flow)")
		}
	case "":
		add("", "provider is required (google, microsoft or generic), or give token_command")
		return
	default:
		add("provider", "provider = %q: want google, microsoft or generic", o.Provider)
		return
	}
	if o.ClientID == "" {
		add("", "client_id is required (register an application with %s)", o.Provider)
	}
	switch o.Flow {
	case "":
		switch {
		case o.Provider == "microsoft":
			o.Flow = "device"
		case o.Provider == "generic" && o.AuthURL == "":
			o.Flow = "device"
		default:
			o.Flow = "loopback"
		}
	case "loopback", "device":
		if o.Flow == "device" && o.Provider == "generic" && o.DeviceAuthURL == "" {
			add("flow", "flow = \"device\" needs device_auth_url")
		}
		if o.Flow == "loopback" && o.Provider == "generic" && o.AuthURL == "" {
			add("flow", "flow = \"loopback\" needs auth_url")
		}
	default:
		add("flow", "flow = %q: want loopback or device", o.Flow)
	}
	if o.TokenFile == "" {
		o.TokenFile = filepath.Join(base, "tokens", name+".json")
	} else {
		o.TokenFile = expand(base, o.TokenFile)
	}
}

// expand resolves ~/ and paths relative to the config file's directory.
func expand(base, p string) string {
	if p == "~" || strings.HasPrefix(p, "~/") {
		home, _ := os.UserHomeDir()
		return filepath.Join(home, p[1:])
	}
	if !filepath.IsAbs(p) {
		return filepath.Join(base, p)
	}
	return filepath.Clean(p)
}

// Select returns the named accounts in the order given, or every account
// when names is empty.
func (c *Config) Select(names []string) ([]Account, error) {
	if len(names) == 0 {
		return c.Accounts, nil
	}
	var out []Account
	var unknown []string
	for _, n := range names {
		found := false
		for _, a := range c.Accounts {
			if a.Name == n {
				out, found = append(out, a), true
				break
			}
		}
		if !found {
			unknown = append(unknown, n)
		}
	}
	if len(unknown) > 0 {
		have := make([]string, len(c.Accounts))
		for i, a := range c.Accounts {
			have[i] = a.Name
		}
		return nil, fmt.Errorf("%s: no account %s (accounts: %s)", c.Path, strings.Join(quote(unknown), ", "), strings.Join(have, ", "))
	}
	return out, nil
}

func quote(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// decodeErrors turns go-toml's errors into file:line errors.
func decodeErrors(path string, data []byte, err error) error {
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		var errs Errors
		for _, e := range strict.Errors {
			row, _ := e.Position()
			key := strings.Join(e.Key(), ".")
			last := e.Key()[len(e.Key())-1]
			msg := fmt.Sprintf("unknown key %q", key)
			switch last {
			case "password":
				msg += ": passwords are not kept in the config; use password_env, password_file or password_command"
			case "accounts":
				msg += ": accounts are [[account]] tables"
			}
			errs = append(errs, &Error{Path: path, Line: row, Msg: msg})
		}
		return errs
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		row, _ := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		// go-toml (v2.2) gives a type error its line but no key (Key is
		// set only in a StrictMissingError): the key and the kinds come
		// from the parsed document at that line, when it parses.
		var syn *toml.DecodeError
		if perr := toml.Unmarshal(data, new(any)); !errors.As(perr, &syn) {
			if m, ok := newPositions(data).typeError(row); ok {
				msg = m
			}
		}
		return Errors{{Path: path, Line: row, Msg: msg}}
	}
	return Errors{{Path: path, Msg: err.Error()}}
}
