package cookie

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// Secret is a server secret: 16 octets, the SipHash-2-4 key of RFC 9018.
type Secret [16]byte

// maxSecrets bounds the secrets a file holds: the one in use and the one
// it replaced, as RFC 9018 §5 rolls them over.
const maxSecrets = 2

// ParseSecret reads a secret written as 32 hexadecimal digits.
func ParseSecret(s string) (Secret, error) {
	var sec Secret
	if len(s) != 2*len(sec) {
		return sec, fmt.Errorf("cookie: a secret is %d hex digits, not %d", 2*len(sec), len(s))
	}
	if _, err := hex.Decode(sec[:], []byte(s)); err != nil {
		return sec, fmt.Errorf("cookie: secret: %w", err)
	}
	if sec == (Secret{}) {
		return sec, errors.New("cookie: the secret is all zeros")
	}
	return sec, nil
}

// ReadSecrets reads path: one or two secrets (see ParseSecret), one a line;
// blank lines and lines starting with # are skipped. The first makes
// cookies; a second, the secret it replaced, is still accepted, so that a
// fleet can change its secret without refusing the cookies its clients
// hold (RFC 9018 §5).
func ReadSecrets(path string) ([]Secret, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cookie: %w", err)
	}
	var out []Secret
	sc := bufio.NewScanner(bytes.NewReader(b))
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" || strings.HasPrefix(s, "#") {
			continue
		}
		if len(out) == maxSecrets {
			return nil, fmt.Errorf("cookie: %s: more than %d secrets", path, maxSecrets)
		}
		sec, err := ParseSecret(s)
		if err != nil {
			return nil, fmt.Errorf("%w (%s line %d)", err, path, line)
		}
		out = append(out, sec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cookie: %s: %w", path, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("cookie: %s holds no secret", path)
	}
	return out, nil
}

// NewSecret returns a random secret, for a server that shares its cookies
// with no other.
func NewSecret() (Secret, error) {
	var s Secret
	if _, err := rand.Read(s[:]); err != nil {
		return s, fmt.Errorf("cookie: random secret: %w", err)
	}
	return s, nil
}
