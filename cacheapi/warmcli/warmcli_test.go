package warmcli

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shardns/shardns/cacheapi/api"
	"github.com/shardns/shardns/internal/queue"
	"github.com/shardns/shardns/internal/testutil/redistest"
)

// fleet is a cacheapi's HTTP API on a real queue in a real Redis, with one
// worker running handle on every task.
func fleet(t *testing.T, maxAttempts int, handle queue.Handler) string {
	t.Helper()
	rs := redistest.Start(t)
	q, err := queue.New(queue.Config{Client: rs.Client(), Lease: 2 * time.Second, MaxAttempts: maxAttempts})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(api.Config{Jobs: q, Token: warmToken}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { q.Work(ctx, queue.Workers{N: 2}, handle) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return srv.URL
}

func csvFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "names.csv")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// warmToken is the token of fleet's API.
const warmToken = "warm-test-token-0123456789"

// run runs the command with the token in SHARDNS_TOKEN, as an operator's
// shell may hold it.
func run(t *testing.T, args ...string) (int, string) {
	t.Helper()
	return runEnv(t, map[string]string{"SHARDNS_TOKEN": warmToken}, args...)
}

func runEnv(t *testing.T, env map[string]string, args ...string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	code := Main(ctx, args, func(k string) string { return env[k] }, strings.NewReader(""), &out, &out)
	return code, out.String()
}

// TestWarmTokenSources: with no -token the token comes from -token-file
// (by default the file cacheapi writes); -token and SHARDNS_TOKEN win over
// the file; with none the 401 says where a token comes from.
func TestWarmTokenSources(t *testing.T) {
	url := fleet(t, 3, func(context.Context, *queue.Task) (string, error) { return "NOERROR", nil })
	names := csvFile(t, "a.example.test\n")
	cfg := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", cfg)
	file := filepath.Join(cfg, "shardns", "token")
	if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(warmToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(other, []byte("wrong-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what string
		env  map[string]string
		args []string
		code int
		says string
	}{
		{"the default file", nil, nil, 0, "finished"},
		{"-token-file", nil, []string{"-token-file", file}, 0, "finished"},
		{"SHARDNS_TOKEN_FILE", map[string]string{"SHARDNS_TOKEN_FILE": file}, nil, 0, "finished"},
		{"-token over a wrong file", nil, []string{"-token", warmToken, "-token-file", other}, 0, "finished"},
		{"SHARDNS_TOKEN over a wrong file", map[string]string{"SHARDNS_TOKEN": warmToken}, []string{"-token-file", other}, 0, "finished"},
		{"a wrong file", nil, []string{"-token-file", other}, 1, "401"},
		{"no file", nil, []string{"-token-file", filepath.Join(t.TempDir(), "none")}, 1, "-token-file"},
		{"a bad file", nil, []string{"-token-file", csvFile(t, "two words\n")}, 1, "cannot be sent"},
	} {
		args := append(append([]string{"-api", url, "-every", "20ms"}, c.args...), names)
		code, out := runEnv(t, c.env, args...)
		if code != c.code || !strings.Contains(out, c.says) {
			t.Errorf("%s: exit %d, want %d saying %q:\n%s", c.what, code, c.code, c.says, out)
		}
	}
}

func TestWarmFileToTheEnd(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{}
	url := fleet(t, 3, func(_ context.Context, task *queue.Task) (string, error) {
		mu.Lock()
		seen[task.Name] = task.Type
		mu.Unlock()
		return "NOERROR 1", nil
	})
	file := csvFile(t, "rank,domain\n1,example.test\n2,www.example.test\n3,mail.example.test\n")
	code, out := run(t, "-api", url+"/", "-every", "20ms", "-type", "AAAA", file)
	if code != 0 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{"3 names", "100% 3/3", "finished: 3 done, 0 dead, 0 canceled"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, n := range []string{"example.test.", "www.example.test.", "mail.example.test."} {
		if seen[n] != "AAAA" {
			t.Errorf("task for %s: type %q, want AAAA (from -type); all: %v", n, seen[n], seen)
		}
	}
}

func TestWarmDeadTasksExitOne(t *testing.T) {
	url := fleet(t, 1, func(context.Context, *queue.Task) (string, error) {
		return "", errors.New("upstream said SERVFAIL")
	})
	code, out := run(t, "-api", url, "-every", "20ms", csvFile(t, "a.example.test\n"))
	if code != 1 || !strings.Contains(out, "0 done, 1 dead") {
		t.Fatalf("exit %d, want 1 with the dead task counted:\n%s", code, out)
	}
}

func TestWarmUsageAndErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		code int
		says string
	}{
		{"no file", []string{}, 2, "usage: cacheapi warm"},
		{"two files", []string{"a", "b"}, 2, "usage: cacheapi warm"},
		{"bad flag", []string{"-nope", "a"}, 2, "-nope"},
		{"bad every", []string{"-every", "0s", "a"}, 2, "usage"},
		{"missing file", []string{filepath.Join(t.TempDir(), "none.csv")}, 1, "no such file"},
		{"bad api", []string{"-api", "127.0.0.1:1", csvFile(t, "a.test\n")}, 1, "bad -api"},
		{"api down", []string{"-api", "http://127.0.0.1:1", csvFile(t, "a.test\n")}, 1, "connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out := run(t, tc.args...)
			if code != tc.code || !strings.Contains(out, tc.says) {
				t.Errorf("exit %d, want %d saying %q:\n%s", code, tc.code, tc.says, out)
			}
		})
	}
}

func TestWarmRejectedUpload(t *testing.T) {
	url := fleet(t, 3, func(context.Context, *queue.Task) (string, error) { return "NOERROR", nil })
	code, out := run(t, "-api", url, csvFile(t, strings.Repeat("x", 64)+".test\n"))
	if code != 1 || !strings.Contains(out, "400") {
		t.Fatalf("exit %d, want 1 with the API's 400:\n%s", code, out)
	}
}
