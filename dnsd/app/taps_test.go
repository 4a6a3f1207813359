package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"go.uber.org/goleak"

	"github.com/shardns/shardns/internal/querylog"
	"github.com/shardns/shardns/internal/testutil/dnstaptest"
	"github.com/shardns/shardns/internal/testutil/procs"
)

// The all-in-one dnsd with -dnstap and -query-log logs its clients'
// queries and its in-process resolver's queries upstream, and when it
// stops the logs are complete on disk and nothing is left running.
func TestRunQueryLogs(t *testing.T) {
	up := upstream(t)
	dir := t.TempDir()
	tapPath, logPath := filepath.Join(dir, "dnsd.tap"), filepath.Join(dir, "query.log")
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())

	var cfg Config
	procs.Parse(t, &cfg, "-listen", "127.0.0.1:0", "-upstream", up, "-cookies=false",
		"-dnstap", tapPath, "-dnstap-identity", "all-in-one.test", "-query-log", logPath, "-drain-timeout", "3s")
	addr, logs, stop := procs.RunInProcess(t, "dnsd", boundUDP, func(ctx context.Context, log *slog.Logger) error {
		return Run(ctx, cfg, log)
	})
	c := &dns.Client{Timeout: 5 * time.Second}
	q := new(dns.Msg).SetQuestion("up.test.", dns.TypeA)
	for range 2 { // a miss, then a hit
		if r, _, err := c.Exchange(q, addr); err != nil || len(r.Answer) != 1 {
			t.Fatalf("up.test.: %v %v", r, err)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("Run: %v\n%s", err, logs.String())
	}

	var types []string
	for _, f := range dnstaptest.ReadFile(t, tapPath) {
		if f.Msg != nil && f.Msg.Question[0].Name == "." {
			continue // the forwarder's health probe, on a slow run
		}
		types = append(types, f.Type())
		if string(f.Identity) != "all-in-one.test" || f.Msg == nil || !strings.EqualFold(f.Msg.Question[0].Name, "up.test.") {
			t.Errorf("%s: identity %q, message %v", f.Type(), f.Identity, f.Msg)
		}
		if strings.HasPrefix(f.Type(), "RESOLVER") && f.Message.GetResponsePort() == 0 {
			t.Errorf("%s without the upstream's port", f.Type())
		}
	}
	want := "RESOLVER_QUERY,RESOLVER_RESPONSE,CLIENT_QUERY,CLIENT_RESPONSE,CLIENT_QUERY,CLIENT_RESPONSE"
	if got := strings.Join(types, ","); got != want {
		t.Errorf("dnstap messages %s, want %s", got, want)
	}
	if docs := dnstaptest.ReadTool(t, tapPath); len(docs) < len(types) {
		t.Errorf("dnstap-read printed %d messages, want %d", len(docs), len(types))
	}

	b, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	var sources []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e querylog.Entry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if e.QName != "up.test." || e.QType != "A" || e.Rcode != "NOERROR" || e.Proto != "udp" {
			t.Errorf("line %+v", e)
		}
		sources = append(sources, e.Source)
	}
	if got := strings.Join(sources, ","); got != "resolver,l1" {
		t.Errorf("query log sources %s, want resolver,l1", got)
	}
}

// A bad -dnstap or -query-log stops dnsd at start with an error naming
// the flag's target.
func TestRunQueryLogErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "no", "such", "dir", "x")
	for _, args := range [][]string{{"-dnstap", bad}, {"-query-log", bad}, {"-query-log", "-", "-query-log-sample", "-2"}} {
		var cfg Config
		procs.Parse(t, &cfg, append([]string{"-listen", "127.0.0.1:0", "-upstream", "127.0.0.1:1"}, args...)...)
		err := Run(t.Context(), cfg, slog.New(slog.DiscardHandler))
		if err == nil || !strings.HasPrefix(err.Error(), "dnsd: ") || !(strings.Contains(err.Error(), "dnstap") || strings.Contains(err.Error(), "query log")) {
			t.Errorf("%v: %v", args, err)
		}
	}
}
