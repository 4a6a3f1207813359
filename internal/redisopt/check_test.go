package redisopt

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"strings"
	"testing"

	"github.com/shardns/shardns/internal/testutil/redistest"
)

// tls12 is a client configuration with the system's roots.
var tls12 = tls.Config{MinVersion: tls.VersionTLS12}

// checkOne runs Check on one server and returns its error and the log.
func checkOne(t *testing.T, addr string, a Auth) (error, string) {
	t.Helper()
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	errs := Check(context.Background(), log, "cache shard", []string{addr}, a)
	return errs[addr], buf.String()
}

// TestCheckNamesTheReason runs Check against servers that ask for a
// password, an ACL user and TLS: the right settings pass quietly, and each
// wrong one is logged at error level with the server's address and why.
func TestCheckNamesTheReason(t *testing.T) {
	ca := redistest.NewCA(t, "trusted")
	untrusted := redistest.NewCA(t, "untrusted")
	pass := redistest.StartSecure(t, redistest.Security{Password: "pw"})
	acl := redistest.StartSecure(t, redistest.Security{User: "app", UserPassword: "secret"})
	tlsSrv := redistest.StartSecure(t, redistest.Security{Password: "pw", TLS: ca})
	plain := redistest.Start(t)
	trust := func(c *redistest.CA) Auth {
		a := Auth{Password: "pw", flag: "redis"}
		cfg, err := (&poolCache{}).config("-redis-tls-ca", c.CertFile)
		if err != nil {
			t.Fatal(err)
		}
		a.TLS = cfg
		return a
	}
	for _, tc := range []struct {
		name   string
		addr   string
		auth   Auth
		reason string // "" for a server that answers
		warn   bool   // logged as a warning, not an error
	}{
		{"password right", pass.Addr, Auth{Password: "pw", flag: "redis"}, "", false},
		{"password wrong", pass.Addr, Auth{Password: "nope", flag: "redis"}, "wrong user or password (-redis-user, -redis-password-file or $SHARDNS_REDIS_PASSWORD)", false},
		{"password missing", pass.Addr, Auth{flag: "redis"}, "asks for a password and none was given", false},
		{"ACL user right", acl.Addr, Auth{User: "app", Password: "secret", flag: "redis"}, "", false},
		{"ACL user wrong password", acl.Addr, Auth{User: "app", Password: "wrong", flag: "redis"}, "wrong user or password", false},
		{"ACL default user off", acl.Addr, Auth{Password: "secret", flag: "redis"}, "wrong user or password", false},
		{"TLS trusted", tlsSrv.Addr, trust(ca), "", false},
		{"TLS untrusted CA", tlsSrv.Addr, trust(untrusted), "not signed by a trusted CA (-redis-tls-ca)", false},
		{"TLS system roots", tlsSrv.Addr, Auth{Password: "pw", TLS: &tls12, flag: "redis"}, "not signed by a trusted CA", false},
		{"plain to a TLS server", tlsSrv.Addr, Auth{Password: "pw", flag: "queue-redis"}, "does it take TLS only? (-queue-redis-tls)", false},
		// A plain server waits for a command line that a ClientHello
		// never ends: to the client it looks like a frozen one.
		{"TLS to a plain server", plain.Addr, trust(ca), "no answer to the TLS handshake: the server does not speak TLS (-redis-tls is set)", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err, log := checkOne(t, tc.addr, tc.auth)
			if tc.reason == "" {
				if err != nil || log != "" {
					t.Fatalf("err %v, log %q; want neither", err, log)
				}
				return
			}
			if err == nil {
				t.Fatal("Check let a wrong setting through")
			}
			wants := []string{"level=ERROR", "refused us", "addr=" + tc.addr, tc.reason}
			if tc.warn {
				wants[0], wants[1] = "level=WARN", "unreachable"
			}
			for _, want := range wants {
				if !strings.Contains(log, want) {
					t.Errorf("log %q lacks %q", log, want)
				}
			}
		})
	}
	// A server not there is unreachable, a warning.
	dead := redistest.Start(t)
	dead.Kill()
	err, log := checkOne(t, dead.Addr, Auth{})
	if err == nil || !strings.Contains(log, "level=WARN") || !strings.Contains(log, "unreachable") || !strings.Contains(log, dead.Addr) {
		t.Errorf("dead server: err %v, log %q", err, log)
	}
}
