package token

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func logTo(buf *bytes.Buffer) *slog.Logger { return slog.New(slog.NewTextHandler(buf, nil)) }

// TestLoadMakesFile: no file: a random token is made and written with mode
// 0600 in folders made 0700; the log names the file and not the token; a
// second Load reads the same token back.
func TestLoadMakesFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a", "b", "token")
	var log bytes.Buffer
	tok, err := Load(file, logTo(&log))
	if err != nil {
		t.Fatal(err)
	}
	if len(tok) != 43 || Check(tok) != nil {
		t.Errorf("token %d characters, Check %v; want 43 base64url characters", len(tok), Check(tok))
	}
	st, err := os.Stat(file)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v, want mode 0600", st, err)
	}
	for _, dir := range []string{filepath.Dir(file), filepath.Dir(filepath.Dir(file))} {
		if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
			t.Errorf("folder %s: %v %v, want mode 0700", dir, st.Mode().Perm(), err)
		}
	}
	if b, _ := os.ReadFile(file); string(b) != tok+"\n" {
		t.Errorf("file holds %q", b)
	}
	if !strings.Contains(log.String(), file) || strings.Contains(log.String(), tok) {
		t.Errorf("log must name the file, never the token: %s", log.String())
	}
	again, err := Load(file, logTo(&log))
	if err != nil || again != tok {
		t.Errorf("second Load: %v; same token %v", err, again == tok)
	}
	if other, _ := New(); other == tok {
		t.Error("two tokens alike")
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(file), ".token-*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestLoadReadsOperatorFile: a file that holds a token (a mounted Secret,
// with its newline) is read and left as it is; one others can read gets a
// warning.
func TestLoadReadsOperatorFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, []byte("  operator-token-0123456789+/==\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	tok, err := Load(file, logTo(&log))
	if err != nil || tok != "operator-token-0123456789+/==" {
		t.Fatalf("Load: %q %v", tok, err)
	}
	if b, _ := os.ReadFile(file); string(b) != "  operator-token-0123456789+/==\n" {
		t.Errorf("the operator's file was changed: %q", b)
	}
	if !strings.Contains(log.String(), "chmod 600") {
		t.Errorf("no warning about a readable token file: %s", log.String())
	}
}

// TestLoadEmptyFileFilled: an empty file is no token yet.
func TestLoadEmptyFileFilled(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tok, err := Load(file, logTo(new(bytes.Buffer)))
	if err != nil || len(tok) != 43 {
		t.Fatalf("Load: %q %v", tok, err)
	}
	if got, err := Read(file); err != nil || got != tok {
		t.Errorf("Read after Load: %q %v", got, err)
	}
}

// TestLoadBadFiles: a file that holds what cannot be a bearer token, or
// too much, is an error, not replaced; no file name is an error.
func TestLoadBadFiles(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"space":   "two words\n",
		"quote":   "tok\"en",
		"binary":  "tok\x00en",
		"padding": "===",
		"huge":    strings.Repeat("a", maxFile+1),
	} {
		file := filepath.Join(dir, name)
		if err := os.WriteFile(file, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if tok, err := Load(file, logTo(new(bytes.Buffer))); err == nil || errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Load %q, %v; want an error", name, tok, err)
		}
		if b, _ := os.ReadFile(file); string(b) != content {
			t.Errorf("%s: the file was replaced", name)
		}
	}
	if _, err := Load("", logTo(new(bytes.Buffer))); err == nil {
		t.Error("Load with no file name: no error")
	}
	if _, err := Read(filepath.Join(dir, "none")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Read of a missing file: %v, want fs.ErrNotExist", err)
	}
}

// TestLoadUnwritable: a folder that cannot be written is an error.
func TestLoadUnwritable(t *testing.T) {
	dir := t.TempDir()
	ro := filepath.Join(dir, "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// root writes anywhere; a path under a file fails for everyone.
		f := filepath.Join(dir, "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		ro = f
	}
	if tok, err := Load(filepath.Join(ro, "sub", "token"), logTo(new(bytes.Buffer))); err == nil {
		t.Errorf("Load under an unwritable path: %q, no error", tok)
	}
}

// TestLoadRace: processes starting at once with one file agree on the
// token (here goroutines, each doing what a process does).
func TestLoadRace(t *testing.T) {
	for range 20 {
		file := filepath.Join(t.TempDir(), "token")
		var wg sync.WaitGroup
		toks := make([]string, 8)
		errs := make([]error, 8)
		for i := range toks {
			wg.Go(func() { toks[i], errs[i] = Load(file, slog.New(slog.DiscardHandler)) })
		}
		wg.Wait()
		for i := range toks {
			if errs[i] != nil || toks[i] != toks[0] {
				t.Fatalf("Load %d: %q %v; Load 0: %q", i, toks[i], errs[i], toks[0])
			}
		}
	}
}

// TestDefaultFile is under the user's configuration folder, and "" when
// there is none.
func TestDefaultFile(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/etc/xdg-test")
	if got := DefaultFile(); got != "/etc/xdg-test/shardns/token" {
		t.Errorf("DefaultFile %q", got)
	}
	t.Setenv("XDG_CONFIG_HOME", "")
	t.Setenv("HOME", "")
	if got := DefaultFile(); got != "" {
		t.Errorf("DefaultFile with no home: %q", got)
	}
}
