package oauth

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

func TestTokenStore(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tokens")
	path := filepath.Join(dir, "alice.json")
	if _, err := LoadToken(path); !errors.Is(err, ErrNoTokenFile) {
		t.Fatalf("missing file: %v", err)
	}
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := SaveToken(path, "cid", &oauth2.Token{RefreshToken: "rt1", AccessToken: "at1", TokenType: "Bearer", Expiry: exp}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v (%v), want %04o", p, fi.Mode().Perm(), err, want)
		}
	}
	tok, err := LoadToken(path)
	if err != nil || tok.RefreshToken != "rt1" || tok.AccessToken != "at1" || !tok.Expiry.Equal(exp) {
		t.Fatalf("load: %+v, %v", tok, err)
	}

	// Replacing is atomic: a reader holding the old file keeps reading
	// the old content whole; the path shows the new one; no temp file
	// stays behind.
	old, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if err := SaveToken(path, "cid", &oauth2.Token{RefreshToken: "rt2"}); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4096)
	n, _ := old.Read(b)
	if !strings.Contains(string(b[:n]), `"rt1"`) {
		t.Errorf("old file changed in place: %s", b[:n])
	}
	if tok, err := LoadToken(path); err != nil || tok.RefreshToken != "rt2" || tok.AccessToken != "" {
		t.Errorf("after replace: %+v, %v", tok, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d files, want 1", len(ents))
	}

	// A file others can read is refused, naming the fix.
	os.Chmod(path, 0o644)
	if _, err := LoadToken(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("0644 file: %v", err)
	}
	os.Chmod(path, 0o600)

	// A file without a refresh token counts as not authorized.
	os.WriteFile(path, []byte(`{"access_token":"x"}`), 0o600)
	if _, err := LoadToken(path); !errors.Is(err, ErrNoTokenFile) {
		t.Errorf("no refresh token: %v", err)
	}
}
