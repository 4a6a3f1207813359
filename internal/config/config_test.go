package config_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/config"
)

// flags is a daemon-like flag set, with one flag of every kind in use.
type flags struct {
	listen       string
	redis        string
	redisCluster bool
	l1           int
	stale        time.Duration
}

func newFlagSet(out io.Writer) (*flag.FlagSet, *flags) {
	var f flags
	fs := flag.NewFlagSet("testd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&f.listen, "listen", ":5353", "address to listen on")
	fs.StringVar(&f.redis, "redis", "", "comma list of Redis shards")
	fs.BoolVar(&f.redisCluster, "redis-cluster", false, "treat -redis as Redis Cluster seeds")
	fs.IntVar(&f.l1, "l1", 100000, "L1 entries")
	fs.DurationVar(&f.stale, "stale", 24*time.Hour, "serve-stale `window`")
	return fs, &f
}

// env returns a getenv over a fixed map.
func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestEnvName(t *testing.T) {
	for name, want := range map[string]string{
		"redis-cluster": "SHARDNS_REDIS_CLUSTER",
		"listen":        "SHARDNS_LISTEN",
		"l1":            "SHARDNS_L1",
		"min-ttl":       "SHARDNS_MIN_TTL",
		"log-format":    "SHARDNS_LOG_FORMAT",
		"queue-redis":   "SHARDNS_QUEUE_REDIS",
	} {
		if got := config.EnvName(name); got != want {
			t.Errorf("EnvName(%q) = %q, want %q", name, got, want)
		}
	}
}

func TestParsePrecedence(t *testing.T) {
	environ := map[string]string{
		"SHARDNS_LISTEN":        "127.0.0.1:53",
		"SHARDNS_REDIS":         "127.0.0.1:6379,127.0.0.1:6380",
		"SHARDNS_REDIS_CLUSTER": "true",
		"SHARDNS_L1":            "5",
		"OTHER_L1":              "7",
	}
	fs, f := newFlagSet(io.Discard)
	// -listen and -redis-cluster are on the command line: they win, even
	// when the command line gives a flag its default value.
	if err := config.Parse(fs, []string{"-listen", "127.0.0.2:5300", "-redis-cluster=false"}, env(environ)); err != nil {
		t.Fatal(err)
	}
	if f.listen != "127.0.0.2:5300" {
		t.Errorf("listen %q: the command line must beat SHARDNS_LISTEN", f.listen)
	}
	if f.redisCluster {
		t.Error("redis-cluster true: -redis-cluster=false on the command line must beat SHARDNS_REDIS_CLUSTER=true")
	}
	if f.redis != "127.0.0.1:6379,127.0.0.1:6380" {
		t.Errorf("redis %q: SHARDNS_REDIS must beat the default", f.redis)
	}
	if f.l1 != 5 {
		t.Errorf("l1 %d: SHARDNS_L1 must beat the default", f.l1)
	}
	if f.stale != 24*time.Hour {
		t.Errorf("stale %v: with neither flag nor variable, the default", f.stale)
	}
}

func TestParseEnvSetsBoolAndDuration(t *testing.T) {
	fs, f := newFlagSet(io.Discard)
	if err := config.Parse(fs, nil, env(map[string]string{"SHARDNS_REDIS_CLUSTER": "1", "SHARDNS_STALE": "90s"})); err != nil {
		t.Fatal(err)
	}
	if !f.redisCluster || f.stale != 90*time.Second {
		t.Errorf("redis-cluster %v stale %v", f.redisCluster, f.stale)
	}
}

func TestParseEmptyEnvKeepsDefault(t *testing.T) {
	fs, f := newFlagSet(io.Discard)
	if err := config.Parse(fs, nil, env(map[string]string{"SHARDNS_LISTEN": ""})); err != nil {
		t.Fatal(err)
	}
	if f.listen != ":5353" {
		t.Errorf("listen %q, want the default", f.listen)
	}
}

func TestParseBadEnvNamesVariable(t *testing.T) {
	for name, value := range map[string]string{
		"SHARDNS_L1":            "lots",
		"SHARDNS_STALE":         "1 day",
		"SHARDNS_REDIS_CLUSTER": "maybe",
	} {
		fs, _ := newFlagSet(io.Discard)
		err := config.Parse(fs, nil, env(map[string]string{name: value}))
		if err == nil {
			t.Errorf("%s=%q: no error", name, value)
			continue
		}
		if !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), value) || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("%s=%q: error %q must name the variable and value", name, value, err)
		}
	}
	// The same bad value is no error when the command line sets the flag.
	fs, f := newFlagSet(io.Discard)
	if err := config.Parse(fs, []string{"-l1", "9"}, env(map[string]string{"SHARDNS_L1": "lots"})); err != nil || f.l1 != 9 {
		t.Errorf("flag given, bad variable ignored: l1 %d err %v", f.l1, err)
	}
}

func TestParseBadCommandLine(t *testing.T) {
	for _, args := range [][]string{
		{"-l1", "many"},
		{"-no-such-flag"},
		{"stray"},
		{"-listen", ":1", "stray"},
	} {
		fs, _ := newFlagSet(io.Discard)
		if err := config.Parse(fs, args, env(nil)); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

func TestUsageListsEveryFlagWithItsVariable(t *testing.T) {
	var out bytes.Buffer
	fs, _ := newFlagSet(&out)
	err := config.Parse(fs, []string{"-h"}, env(nil))
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("-h: err %v, want flag.ErrHelp", err)
	}
	text := out.String()
	if !strings.HasPrefix(text, "Usage of testd:") {
		t.Errorf("usage starts %q", firstLine(text))
	}
	n := 0
	fs.VisitAll(func(f *flag.Flag) {
		n++
		loc := regexp.MustCompile(`(?m)^  -` + regexp.QuoteMeta(f.Name) + `( |$)`).FindStringIndex(text)
		if loc == nil {
			t.Errorf("usage does not list -%s:\n%s", f.Name, text)
			return
		}
		entry := text[loc[0]:]
		if j := strings.Index(entry[3:], "\n  -"); j >= 0 {
			entry = entry[:j+3]
		}
		if !strings.Contains(entry, "[$"+config.EnvName(f.Name)+"]") {
			t.Errorf("-%s lacks [$%s]: %q", f.Name, config.EnvName(f.Name), entry)
		}
		if !strings.Contains(entry, f.Usage[:5]) {
			t.Errorf("-%s lacks its help text: %q", f.Name, entry)
		}
	})
	if n != 5 {
		t.Fatalf("visited %d flags", n)
	}
	for _, want := range []string{`(default ":5353")`, `(default "24h0m0s")`, "-stale window"} {
		if !strings.Contains(text, want) {
			t.Errorf("usage lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, `(default "")`) || strings.Contains(text, `(default "false")`) {
		t.Errorf("usage shows empty defaults:\n%s", text)
	}
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func TestList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                       nil,
		" , ,":                   nil,
		"a":                      {"a"},
		"127.0.0.1:53,127.0.0.2": {"127.0.0.1:53", "127.0.0.2"},
		" a , b ,, c ,":          {"a", "b", "c"},
		"tls://1.1.1.1#one.one":  {"tls://1.1.1.1#one.one"},
	} {
		if got := config.List(in); !slices.Equal(got, want) {
			t.Errorf("List(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoggerJSON(t *testing.T) {
	var buf bytes.Buffer
	log, err := config.Logger(&buf, "json", "info")
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("ready", "listen", "127.0.0.1:53", "n", 3)
	log.Warn("slow", "shard", "127.0.0.1:6379")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines at level info, want 2 (debug dropped):\n%s", len(lines), buf.String())
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil {
		t.Fatalf("json log line does not parse: %v: %s", err, lines[0])
	}
	if rec["msg"] != "ready" || rec["level"] != "INFO" || rec["listen"] != "127.0.0.1:53" || rec["n"] != float64(3) {
		t.Errorf("record %v", rec)
	}
	if err := json.Unmarshal([]byte(lines[1]), &rec); err != nil || rec["level"] != "WARN" {
		t.Errorf("second record %v %v", rec, err)
	}
}

func TestLoggerText(t *testing.T) {
	for _, format := range []string{"text", ""} {
		var buf bytes.Buffer
		log, err := config.Logger(&buf, format, "debug")
		if err != nil {
			t.Fatal(err)
		}
		log.Debug("shown", "k", "v")
		if got := buf.String(); !strings.Contains(got, "level=DEBUG") || !strings.Contains(got, "msg=shown") || !strings.Contains(got, "k=v") {
			t.Errorf("format %q: %q", format, got)
		}
		if json.Valid(buf.Bytes()) {
			t.Errorf("format %q wrote JSON", format)
		}
	}
}

func TestLoggerRejects(t *testing.T) {
	for _, c := range [][2]string{{"xml", "info"}, {"JSON ", "info"}, {"json", "loud"}, {"text", ""}} {
		if _, err := config.Logger(io.Discard, c[0], c[1]); err == nil || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("Logger(%q, %q): err %v, want a config: error", c[0], c[1], err)
		}
	}
}

// FuzzParseEnv sets every flag from arbitrary variable values: Parse must
// not panic, and an error must name a variable that was set.
func FuzzParseEnv(f *testing.F) {
	f.Add(":53", "a,b", "true", "10", "1h")
	f.Add("", "", "", "", "")
	f.Add("x", "y", "no", "-1", "-5s")
	f.Add("\x00", "\xff", "T", "0x10", "9999999999h")
	f.Fuzz(func(t *testing.T, listen, redis, cluster, l1, stale string) {
		environ := map[string]string{
			"SHARDNS_LISTEN": listen, "SHARDNS_REDIS": redis, "SHARDNS_REDIS_CLUSTER": cluster,
			"SHARDNS_L1": l1, "SHARDNS_STALE": stale,
		}
		fs, f := newFlagSet(io.Discard)
		err := config.Parse(fs, nil, env(environ))
		if err != nil {
			named := false
			for k, v := range environ {
				named = named || v != "" && strings.Contains(err.Error(), k+"=")
			}
			if !named {
				t.Fatalf("error %q names no variable that was set", err)
			}
			return
		}
		if listen != "" && f.listen != listen || redis != "" && f.redis != redis {
			t.Fatalf("listen %q redis %q from %q %q", f.listen, f.redis, listen, redis)
		}
	})
}
