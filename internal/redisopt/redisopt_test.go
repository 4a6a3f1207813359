package redisopt

import (
	"crypto/tls"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// parse registers the flags on a new set, parses args and loads them with
// env as the environment.
func parse(t *testing.T, env map[string]string, args ...string) (cache, queue Auth, err error) {
	t.Helper()
	var f Flags
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	f.Register(fs)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	f.Getenv = func(k string) string { return env[k] }
	return f.Load()
}

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPassword(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string // body; "" for no file
		env     string
		want    string
		wantErr string
	}{
		{name: "none"},
		{name: "file", file: "pw\n", want: "pw"},
		{name: "file CRLF", file: "pw\r\n", want: "pw"},
		{name: "file without newline", file: "p w", want: "p w"},
		{name: "only one newline trimmed", file: "pw\n\n", want: "pw\n"},
		{name: "environment", env: "from-env", want: "from-env"},
		{name: "both", file: "pw\n", env: "from-env", wantErr: "both -redis-password-file and SHARDNS_REDIS_PASSWORD"},
		{name: "empty file", file: "\n", wantErr: "is empty"},
		{name: "huge file", file: strings.Repeat("x", maxSecretFile+1), wantErr: "over"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var args []string
			if tc.file != "" {
				args = append(args, "-redis-password-file", writeFile(t, tc.file))
			}
			c, q, err := parse(t, map[string]string{PasswordEnv: tc.env}, args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Password != tc.want || q.Password != tc.want {
				t.Errorf("passwords %q (cache), %q (queue); want %q for both", c.Password, q.Password, tc.want)
			}
		})
	}
	if _, _, err := parse(t, nil, "-redis-password-file", filepath.Join(t.TempDir(), "missing")); err == nil || !strings.Contains(err.Error(), "-redis-password-file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestLoadRefusesBadSettings(t *testing.T) {
	pw := map[string]string{PasswordEnv: "pw"}
	notPEM := writeFile(t, "not a certificate\n")
	for _, tc := range []struct {
		name    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"user without password", nil, []string{"-redis-user", "app"}, "-redis-user app needs a password"},
		{"CA without TLS", pw, []string{"-redis-tls-ca", notPEM}, "-redis-tls-ca is set without -redis-tls"},
		{"CA not PEM", pw, []string{"-redis-tls", "-redis-tls-ca", notPEM}, "no PEM certificate"},
		{"CA missing", pw, []string{"-redis-tls", "-redis-tls-ca", "/nonexistent/ca.pem"}, "-redis-tls-ca"},
		{"queue user without password", nil, []string{"-queue-redis-user", "q"}, "-queue-redis-user q needs a password"},
		{"queue password both ways", map[string]string{QueuePasswordEnv: "x"}, []string{"-queue-redis-password-file", writeFile(t, "y")}, "both -queue-redis-password-file and SHARDNS_QUEUE_REDIS_PASSWORD"},
		{"queue CA without TLS", nil, []string{"-queue-redis-tls-ca", notPEM}, "-queue-redis-tls-ca is set"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := parse(t, tc.env, tc.args...)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoadQueueTakesUnsetFromCache(t *testing.T) {
	ca := redistest.NewCA(t, "q")
	other := redistest.NewCA(t, "other")
	env := map[string]string{PasswordEnv: "cache-pw"}

	c, q, err := parse(t, env, "-redis-user", "app", "-redis-tls", "-redis-tls-ca", ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if c.User != "app" || c.Password != "cache-pw" || c.TLS == nil || c.TLS.RootCAs == nil {
		t.Fatalf("cache settings %+v", c)
	}
	if q.User != "app" || q.Password != "cache-pw" || q.TLS == nil || !q.TLS.RootCAs.Equal(c.TLS.RootCAs) {
		t.Errorf("queue did not take the cache's settings: %+v", q)
	}
	for _, a := range []Auth{c, q} {
		if a.TLS.MinVersion != tls.VersionTLS12 {
			t.Errorf("TLS MinVersion %x, want TLS 1.2", a.TLS.MinVersion)
		}
	}

	// Every queue setting given overrides the cache's.
	env[QueuePasswordEnv] = "queue-pw"
	c, q, err = parse(t, env, "-redis-user", "app", "-redis-tls", "-redis-tls-ca", ca.CertFile,
		"-queue-redis-user", "worker", "-queue-redis-tls-ca", other.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	if q.User != "worker" || q.Password != "queue-pw" || q.TLS == nil || !q.TLS.RootCAs.Equal(other.Pool) {
		t.Errorf("queue settings %+v", q)
	}
	if c.Password != "cache-pw" || !c.TLS.RootCAs.Equal(ca.Pool) {
		t.Errorf("the queue's flags changed the cache's: %+v", c)
	}

	// Set explicitly empty or false, a queue setting is that, not the
	// cache's.
	_, q, err = parse(t, env, "-redis-user", "app", "-redis-tls", "-queue-redis-user=", "-queue-redis-tls=false")
	if err != nil {
		t.Fatal(err)
	}
	if q.User != "" || q.TLS != nil {
		t.Errorf("queue user %q, TLS %v; want the default user, plain", q.User, q.TLS)
	}
	// TLS for the queue alone, with the system's roots.
	c, q, err = parse(t, nil, "-queue-redis-tls")
	if err != nil {
		t.Fatal(err)
	}
	if c.TLS != nil || q.TLS == nil || q.TLS.RootCAs != nil {
		t.Errorf("cache TLS %v, queue TLS %v; want plain, and TLS with the system's roots", c.TLS, q.TLS)
	}
}
