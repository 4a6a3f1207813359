// Package token keeps the REST API's bearer token in a file: cacheapi and
// dnsd -http make one from crypto/rand at start when the operator gave
// none and write it where `cacheapi warm` (and the operator, for curl)
// reads it; a file that already holds a token is read instead, so that a
// restart keeps it and an operator can mount one (a Kubernetes Secret, a
// systemd credential).
package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// randomBytes is how much randomness a made token carries: 256 bits, as
// 43 base64url characters.
const randomBytes = 32

// minLength is the shortest token taken without a warning.
const minLength = 16

// maxFile bounds what is read from a token file.
const maxFile = 4096

// DefaultFile is the token file used when -token-file is not given:
// shardns/token under the user's configuration folder
// ($XDG_CONFIG_HOME, else ~/.config, on Linux). It is "" when the system
// names no such folder (no $HOME).
func DefaultFile() string {
	dir, err := os.UserConfigDir()
	if err != nil || dir == "" {
		return ""
	}
	return filepath.Join(dir, "shardns", "token")
}

// New returns a fresh random token.
func New() (string, error) {
	b := make([]byte, randomBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("token: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Check says whether tok can be sent in an Authorization: Bearer header
// (RFC 6750's b64token: letters, digits, - . _ ~ + /, then = padding).
func Check(tok string) error {
	if tok == "" {
		return errors.New("token: empty")
	}
	body := strings.TrimRight(tok, "=")
	if body == "" {
		return errors.New("token: only padding")
	}
	for _, c := range body {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return fmt.Errorf("token: character %q cannot be sent as a bearer token (RFC 6750: letters, digits, - . _ ~ + / and = at the end)", c)
		}
	}
	return nil
}

// Read returns the token held in file, trimmed of surrounding white space
// (a Secret mounted as a file often ends in a newline). An empty file is
// fs.ErrNotExist's kind: no token yet.
func Read(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return "", fmt.Errorf("token: read %s: %w", file, err)
	}
	n := len(b)
	if n > maxFile {
		return "", fmt.Errorf("token: %s is larger than %d bytes", file, maxFile)
	}
	tok := strings.TrimSpace(string(b[:n]))
	if tok == "" {
		return "", fmt.Errorf("token: %s is empty: %w", file, fs.ErrNotExist)
	}
	if err := Check(tok); err != nil {
		return "", fmt.Errorf("%w (in %s)", err, file)
	}
	return tok, nil
}

// Load returns the token in file, or makes one and writes it there (mode
// 0600; missing folders made 0700) when file does not exist or is empty.
// It logs where the token is, never the token. Two processes starting at
// once with the same file end with the same token: the file appears whole
// or not at all (written aside, then linked into place).
func Load(file string, log *slog.Logger) (string, error) {
	if file == "" {
		return "", errors.New("token: no token file: set -token or -token-file")
	}
	if tok, err := Read(file); err == nil {
		warnMode(file, tok, log)
		log.Info("API token read", "token_file", file)
		return tok, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	tok, err := New()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	if err := place(file, tok); err != nil {
		return "", err
	}
	// Another process may have placed its token first: use what is there.
	got, err := Read(file)
	if err != nil {
		return "", err
	}
	if got == tok {
		log.Info("API token made; send it as Authorization: Bearer <token>", "token_file", file)
	} else {
		log.Info("API token read", "token_file", file)
	}
	return got, nil
}

// place writes tok to a new file beside file, then links it to file; an
// empty file already there is replaced.
func place(file, tok string) error {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".token-*")
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("token: %w", err)
	}
	if _, err := tmp.WriteString(tok + "\n"); err != nil {
		tmp.Close()
		return fmt.Errorf("token: write %s: %w", tmp.Name(), err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("token: sync %s: %w", tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("token: %w", err)
	}
	err = os.Link(tmp.Name(), file)
	if errors.Is(err, fs.ErrExist) {
		if st, serr := os.Stat(file); serr == nil && st.Mode().IsRegular() && st.Size() == 0 {
			err = os.Rename(tmp.Name(), file) // an empty file: no token to keep
		} else {
			return nil // another process placed its token: Load reads it
		}
	}
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	return nil
}

// warnMode warns about a token file others may read, and a short token.
func warnMode(file, tok string, log *slog.Logger) {
	if st, err := os.Stat(file); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("API token file can be read by other users; chmod 600 it", "token_file", file, "mode", st.Mode().Perm().String())
	}
	if len(tok) < minLength {
		log.Warn("API token is short; use at least 16 random characters", "token_file", file)
	}
}
