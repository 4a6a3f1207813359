package redistest

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// pingWith pings s with opt changed by change, on a client of its own.
func pingWith(t *testing.T, s *Server, change func(*redis.Options)) error {
	t.Helper()
	opt := s.Options(time.Second)
	opt.MaxRetries = -1
	change(opt)
	c := redis.NewClient(opt)
	defer c.Close()
	return c.Ping(t.Context()).Err()
}

func TestStartSecurePassword(t *testing.T) {
	s := StartSecure(t, Security{Password: "s3cret pass"})
	if err := s.Client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("the server's own client: %v", err)
	}
	if err := pingWith(t, s, func(o *redis.Options) { o.Password = "" }); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("no password: %v, want NOAUTH", err)
	}
	if err := pingWith(t, s, func(o *redis.Options) { o.Password = "wrong" }); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v, want WRONGPASS", err)
	}
	// Restart keeps the security settings.
	s.Restart()
	if err := s.Client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("after Restart: %v", err)
	}
}

func TestStartSecureACLUser(t *testing.T) {
	s := StartSecure(t, Security{User: "app", UserPassword: "secret"})
	if err := s.Client().Set(t.Context(), "k", "v", 0).Err(); err != nil {
		t.Fatalf("the ACL user: %v", err)
	}
	if err := pingWith(t, s, func(o *redis.Options) { o.Password = "wrong" }); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v, want WRONGPASS", err)
	}
	// The default user is off, whatever password it is given.
	if err := pingWith(t, s, func(o *redis.Options) { o.Username = "" }); err == nil {
		t.Error("the default user was let in")
	}
}

func TestStartSecureTLS(t *testing.T) {
	ca := NewCA(t, "a")
	s := StartSecure(t, Security{Password: "pw", TLS: ca})
	if err := s.Client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("a client that trusts the CA: %v", err)
	}
	other := NewCA(t, "b")
	err := pingWith(t, s, func(o *redis.Options) { o.TLSConfig = other.ClientTLS() })
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("a client that trusts another CA: %v, want an unknown authority", err)
	}
	if err := pingWith(t, s, func(o *redis.Options) { o.TLSConfig = nil }); err == nil {
		t.Error("a plain client was answered by a TLS-only server")
	}
	if err := ping(s.Addr, time.Second); err == nil {
		t.Error("plain PING answered by a TLS-only server")
	}
}

func TestStartSecureCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster takes seconds to settle")
	}
	c := StartSecureCluster(t, Security{Password: "cluster-pw"}, 3, 1)
	m := c.Masters()[0]
	if err := m.Client().Ping(t.Context()).Err(); err != nil {
		t.Fatalf("a node's own client: %v", err)
	}
	if err := pingWith(t, m, func(o *redis.Options) { o.Password = "" }); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("no password: %v, want NOAUTH", err)
	}
	// Replicas authenticated to their masters: every replica is in sync
	// (Wait checks master_link_status:up).
	// One node's view may show a replica a moment after it has joined:
	// WaitReplicaOf fails the test if none comes.
	c.Wait()
	c.WaitReplicaOf(m)
}
