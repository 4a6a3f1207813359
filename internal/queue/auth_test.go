package queue

import (
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/redisopt"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// TestOpenACLUserOverTLS runs a job through a queue whose Redis takes only
// TLS and an ACL user (the default user off): submit, claim, finish. A
// wrong password and an untrusted certificate are refused.
func TestOpenACLUserOverTLS(t *testing.T) {
	ca := redistest.NewCA(t, "queue")
	srv := redistest.StartSecure(t, redistest.Security{User: "worker", UserPassword: "w-secret", TLS: ca},
		"--maxmemory-policy", "noeviction")
	auth := redisopt.Auth{User: "worker", Password: "w-secret", TLS: ca.ClientTLS()}
	q, err := Open(srv.Addr, Config{Name: "sec", Auth: auth})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Client().Close()
	ctx := t.Context()
	job, err := q.Submit(ctx, []Item{{Name: "a.example.", Type: "A"}}, "test")
	if err != nil {
		t.Fatalf("Submit: %v", err)
	}
	task, err := q.Claim(ctx, "w1", time.Second)
	if err != nil || task == nil || task.Job != job.ID {
		t.Fatalf("Claim: %+v, %v", task, err)
	}
	if ok, err := q.Finish(ctx, task.ID, "done", "NOERROR"); err != nil || !ok {
		t.Fatalf("Finish: %v, %v", ok, err)
	}
	// The work is in the server, as another client logged in sees it.
	if n, err := srv.Client().LLen(ctx, q.Key("completed")).Result(); err != nil || n != 1 {
		t.Errorf("completed list: %d, %v", n, err)
	}

	wrong := auth
	wrong.Password = "nope"
	qw, err := Open(srv.Addr, Config{Name: "sec", Auth: wrong})
	if err != nil {
		t.Fatal(err)
	}
	defer qw.Client().Close()
	if _, err := qw.Counts(ctx); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Errorf("wrong password: %v, want WRONGPASS", err)
	}
	untrusted := auth
	untrusted.TLS = redistest.NewCA(t, "other").ClientTLS()
	qu, err := Open(srv.Addr, Config{Name: "sec", Auth: untrusted})
	if err != nil {
		t.Fatal(err)
	}
	defer qu.Client().Close()
	var unknown x509.UnknownAuthorityError
	if _, err := qu.Counts(ctx); !errors.As(err, &unknown) {
		t.Errorf("untrusted certificate: %v, want an unknown certificate authority", err)
	}
	if _, err := Open(srv.Addr, Config{Auth: redisopt.Auth{User: "worker"}}); err == nil {
		t.Error("Open took a user without a password")
	}
}
