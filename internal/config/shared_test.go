package config_test

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"testing"

	cacheapi "github.com/shardns/shardns/cacheapi/app"
	dnsd "github.com/shardns/shardns/dnsd/app"
	"github.com/shardns/shardns/internal/config"
	resolverd "github.com/shardns/shardns/resolverd/service"
)

// perDaemon are the flags whose meaning is each daemon's own: the same
// name may have another default and another help in each (-tls-cert is
// gRPC's certificate in resolverd, the encrypted listeners' in dnsd).
var perDaemon = map[string]bool{"listen": true, "tls-cert": true, "tls-key": true}

// daemonFlags builds each daemon's FlagSet as its main does.
func daemonFlags() map[string]*flag.FlagSet {
	out := map[string]*flag.FlagSet{}
	for name, d := range map[string]config.Daemon{
		"dnsd": &dnsd.Config{}, "resolverd": &resolverd.Config{}, "cacheapi": &cacheapi.Config{},
	} {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		d.Register(fs)
		out[name] = fs
	}
	return out
}

// differences lists every flag two daemons define differently: another
// default, another type of value or another help text.
func differences(sets map[string]*flag.FlagSet) []string {
	type def struct{ daemon, value, typ, usage string }
	seen := map[string]def{}
	var out []string
	names := make([]string, 0, len(sets))
	for n := range sets {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, daemon := range names {
		sets[daemon].VisitAll(func(f *flag.Flag) {
			if perDaemon[f.Name] {
				return
			}
			d := def{daemon, f.DefValue, fmt.Sprintf("%T", f.Value), f.Usage}
			first, ok := seen[f.Name]
			if !ok {
				seen[f.Name] = d
				return
			}
			if first.value != d.value {
				out = append(out, fmt.Sprintf("-%s: default %q in %s, %q in %s", f.Name, first.value, first.daemon, d.value, d.daemon))
			}
			if first.typ != d.typ {
				out = append(out, fmt.Sprintf("-%s: a %s in %s, a %s in %s", f.Name, first.typ, first.daemon, d.typ, d.daemon))
			}
			if first.usage != d.usage {
				out = append(out, fmt.Sprintf("-%s: help differs between %s and %s", f.Name, first.daemon, d.daemon))
			}
		})
	}
	return out
}

// A flag two daemons share is one flag: the same default, type and help.
func TestSharedFlagsAgree(t *testing.T) {
	sets := daemonFlags()
	for _, d := range differences(sets) {
		t.Error(d)
	}
	// The check sees the flags the daemons do share.
	shared := 0
	sets["dnsd"].VisitAll(func(f *flag.Flag) {
		if sets["resolverd"].Lookup(f.Name) != nil && sets["cacheapi"].Lookup(f.Name) != nil {
			shared++
		}
	})
	if shared < 20 {
		t.Errorf("only %d flags shared by all three daemons; the daemons' FlagSets look incomplete", shared)
	}
}

// differences reports a flag whose default, type or help differs.
func TestDifferencesFindsDisagreement(t *testing.T) {
	a := flag.NewFlagSet("a", flag.ContinueOnError)
	b := flag.NewFlagSet("b", flag.ContinueOnError)
	a.Duration("redis-timeout", 50e6, "budget")
	b.Duration("redis-timeout", 500e6, "budget")
	a.String("same", "x", "help")
	b.String("same", "x", "help")
	a.String("typed", "1", "help")
	b.Int("typed", 1, "help")
	a.String("told", "", "one help")
	b.String("told", "", "another help")
	a.String("listen", ":1", "a's")
	b.String("listen", ":2", "b's")
	got := strings.Join(differences(map[string]*flag.FlagSet{"a": a, "b": b}), "\n")
	for _, want := range []string{`-redis-timeout: default "50ms" in a, "500ms" in b`, "-typed: a *flag.stringValue in a, a *flag.intValue in b", "-told: help differs"} {
		if !strings.Contains(got, want) {
			t.Errorf("differences missed %q; got:\n%s", want, got)
		}
	}
	if strings.Contains(got, "-same") || strings.Contains(got, "-listen") {
		t.Errorf("differences reported an agreeing or per-daemon flag:\n%s", got)
	}
}

// Every flag keeps its SHARDNS_ variable, and -h lists every flag.
func TestEveryFlagListed(t *testing.T) {
	for name, fs := range daemonFlags() {
		var out strings.Builder
		fs.SetOutput(&out)
		err := config.Parse(fs, []string{"-h"}, func(string) string { return "" })
		if err != flag.ErrHelp {
			t.Fatalf("%s -h: %v", name, err)
		}
		fs.VisitAll(func(f *flag.Flag) {
			if !strings.Contains(out.String(), "  -"+f.Name+" ") && !strings.Contains(out.String(), "  -"+f.Name+"\n") {
				t.Errorf("%s -h does not list -%s", name, f.Name)
			}
			if !strings.Contains(out.String(), "[$"+config.EnvName(f.Name)+"]") {
				t.Errorf("%s -h does not name $%s", name, config.EnvName(f.Name))
			}
		})
	}
}

// The flags that were in two daemons with two defaults keep one.
func TestRedisTimeoutOneDefault(t *testing.T) {
	for name, fs := range daemonFlags() {
		if got := fs.Lookup("redis-timeout").DefValue; got != "50ms" {
			t.Errorf("%s -redis-timeout default %s, want 50ms", name, got)
		}
	}
}

// The groups' values reach the daemons' fields from the command line and
// the environment alike.
func TestSharedFlagsSet(t *testing.T) {
	var d dnsd.Config
	fs := flag.NewFlagSet("dnsd", flag.ContinueOnError)
	d.Register(fs)
	env := map[string]string{"SHARDNS_LOG_LEVEL": "debug", "SHARDNS_REDIS_TIMEOUT": "80ms", "SHARDNS_DRAIN_TIMEOUT": "3s"}
	if err := config.Parse(fs, []string{"-redis", "a:1,b:2", "-zones", "/z", "-stale", "1h", "-allow", "any"}, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if d.Frontend.Redis != "a:1,b:2" || d.Frontend.RedisTimeout.String() != "80ms" || d.Zones != "/z" || d.Frontend.Stale.String() != "1h0m0s" || d.Allow != "any" || d.DrainTimeout.String() != "3s" {
		t.Errorf("parsed %+v", d)
	}
	if f, l := d.LogSettings(); f != "text" || l != "debug" {
		t.Errorf("LogSettings %q %q", f, l)
	}
	var r resolverd.Config
	fs = flag.NewFlagSet("resolverd", flag.ContinueOnError)
	r.Register(fs)
	if err := config.Parse(fs, []string{"-redis", "a:1", "-queue-redis", "q:1", "-prefetch-hits", "5", "-upstream", "127.0.0.1:53"}, func(string) string { return "" }); err != nil {
		t.Fatal(err)
	}
	if r.Work.Redis != "a:1" || r.Work.QueueRedis != "q:1" || r.Work.PrefetchHits != 5 || r.Upstream != "127.0.0.1:53" || r.Work.RedisTimeout.String() != "50ms" {
		t.Errorf("parsed %+v", r)
	}
}
