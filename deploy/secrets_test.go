package deploy

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/redis/go-redis/v9"

	"github.com/shardns/shardns/internal/testutil/procs"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// makeSecrets runs deploy/redis/make-secrets.sh into dir and returns the
// files it made.
func makeSecrets(t *testing.T, dir string) map[string]string {
	t.Helper()
	sh := need(t, "sh", "dash")
	out, err := exec.Command(sh, filepath.Join(repoRoot(t), "deploy", "redis", "make-secrets.sh"), dir).CombinedOutput()
	if err != nil {
		t.Fatalf("make-secrets.sh: %v\n%s", err, out)
	}
	files := map[string]string{}
	for _, name := range []string{"redis-password", "api-token", "users.acl"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(b)
	}
	return files
}

// TestMakeSecrets runs the script that makes the compose fleet's secrets:
// random values, kept across runs, and an ACL that a real redis-server
// with deploy/redis/cache.conf loads and enforces.
func TestMakeSecrets(t *testing.T) {
	dir := t.TempDir()
	first := makeSecrets(t, dir)
	pw := strings.TrimSpace(first["redis-password"])
	if len(pw) != 64 || strings.Trim(pw, "0123456789abcdef") != "" {
		t.Fatalf("redis-password %q, want 64 hex digits", pw)
	}
	if tok := strings.TrimSpace(first["api-token"]); len(tok) != 64 || tok == pw {
		t.Errorf("api-token %q, want 64 hex digits of its own", tok)
	}
	if again := makeSecrets(t, dir); again["redis-password"] != first["redis-password"] || again["api-token"] != first["api-token"] {
		t.Error("a second run changed the secrets; a restarted fleet would lose its password")
	}
	if other := makeSecrets(t, t.TempDir()); other["redis-password"] == first["redis-password"] {
		t.Error("two runs into empty folders made the same password")
	}

	server := need(t, "redis-server", "redis-server")
	port, err := redistest.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(server, filepath.Join(repoRoot(t), "deploy", "redis", "cache.conf"),
		"--aclfile", filepath.Join(dir, "users.acl"),
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", t.TempDir(), "--logfile", "", "--daemonize", "no")
	var out procs.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })

	addr := "127.0.0.1:" + strconv.Itoa(port)
	ping := func(user, pass string) error {
		c := redis.NewClient(&redis.Options{Addr: addr, Username: user, Password: pass, MaxRetries: -1})
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return c.Ping(ctx).Err()
	}
	deadline := time.Now().Add(10 * time.Second)
	for ping("shardns", pw) != nil {
		select {
		case <-exited:
			t.Fatalf("redis-server exited:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no PONG for user shardns within 10s:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := ping("", ""); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("a client without a password got %v, want NOAUTH", err)
	}
	if err := ping("shardns", "wrong"); err == nil {
		t.Error("a wrong password was accepted")
	}
	if err := ping("default", pw); err == nil {
		t.Error("the default user is on")
	}
}

// TestComposeSecrets checks the compose fleet uses them: a one-shot service
// makes them, every Redis loads the ACL and authenticates its own
// healthcheck, and every daemon logs in from the password file.
func TestComposeSecrets(t *testing.T) {
	p := loadCompose(t, nil, nil)
	var makers []string
	for name, s := range p.Services {
		if oneShot(s) {
			makers = append(makers, name)
			if !slices.ContainsFunc(s.Command, func(a string) bool { return strings.HasSuffix(a, "make-secrets.sh") }) {
				t.Errorf("%s: one-shot service runs %q, not make-secrets.sh", name, s.Command)
			}
		}
	}
	if len(makers) != 1 {
		t.Fatalf("one-shot services %v, want the one that makes the secrets", makers)
	}
	mounts := func(s types.ServiceConfig, target string) bool {
		return slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Source == "secrets" && v.Target == target && v.ReadOnly
		})
	}
	for name, s := range p.Services {
		switch {
		case oneShot(s):
		case strings.HasPrefix(s.Image, "redis"):
			if i := slices.Index(s.Command, "--aclfile"); i < 0 || i+1 >= len(s.Command) || s.Command[i+1] != "/secrets/users.acl" {
				t.Errorf("%s: redis-server %q loads no ACL from the secrets", name, s.Command)
			}
			if !mounts(s, "/secrets") {
				t.Errorf("%s: the secrets volume is not mounted read-only at /secrets", name)
			}
			if hc := strings.Join(s.HealthCheck.Test, " "); !strings.Contains(hc, "--user shardns") || !strings.Contains(hc, "/secrets/redis-password") {
				t.Errorf("%s: healthcheck %q does not log in", name, hc)
			}
			if d, ok := s.DependsOn[makers[0]]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
				t.Errorf("%s: does not wait for the secrets", name)
			}
		default:
			set := settings(s, accepted[daemonOf(s)])
			file := set["redis-password-file"]
			if set["redis-user"] != "shardns" || !strings.HasPrefix(file, "/run/secrets/shardns/") || !mounts(s, "/run/secrets/shardns") {
				t.Errorf("%s: Redis user %q, password file %q: want user shardns and the file of the mounted secrets", name, set["redis-user"], file)
			}
		}
	}
}
