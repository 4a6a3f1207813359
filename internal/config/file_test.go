package config_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/config"
)

// fleetDaemon is a daemon of a test fleet: alpha and beta share -stale,
// -upstream, -cluster and -forward (same type, default and help), each has
// its own -listen, and only alpha has -rate-limit.
type fleetDaemon struct {
	name      string
	listen    string
	stale     time.Duration
	upstream  string
	cluster   bool
	forward   string
	rateLimit float64
	level     string
}

func (d *fleetDaemon) Register(fs *flag.FlagSet) {
	fs.StringVar(&d.listen, "listen", ":"+d.name, d.name+"'s address")
	fs.DurationVar(&d.stale, "stale", time.Hour, "serve-stale window")
	fs.StringVar(&d.upstream, "upstream", "", "comma list of upstreams")
	fs.BoolVar(&d.cluster, "cluster", false, "cluster mode")
	fs.StringVar(&d.forward, "forward", "", "zone=upstream,upstream;zone=upstream")
	fs.StringVar(&d.level, "log-level", "info", "log level")
	if d.name == "alpha" {
		fs.Float64Var(&d.rateLimit, "rate-limit", 0, "queries per second")
	}
}

func (d *fleetDaemon) LogSettings() (string, string) { return "text", d.level }
func (d *fleetDaemon) Reloadable() []string          { return []string{"upstream", "stale"} }

func testSchema() *config.Schema {
	return config.NewSchema(map[string]config.Daemon{
		"alpha": &fleetDaemon{name: "alpha"}, "beta": &fleetDaemon{name: "beta"},
	})
}

// loadFile loads text as the config file of daemon (alpha or beta) with
// args on the command line and environ as the environment.
func loadFile(t *testing.T, daemon, text string, args []string, environ map[string]string) (*fleetDaemon, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "shardns.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &fleetDaemon{name: daemon}
	fs := config.FlagSet(daemon, d, os.Stderr)
	err := config.Load(fs, append([]string{"-config", path}, args...), env(environ), testSchema(), daemon)
	return d, err
}

func TestSchemaPerDaemon(t *testing.T) {
	s := testSchema()
	if !s.PerDaemon("listen") || s.PerDaemon("stale") || s.PerDaemon("rate-limit") {
		t.Errorf("PerDaemon: listen %v stale %v rate-limit %v", s.PerDaemon("listen"), s.PerDaemon("stale"), s.PerDaemon("rate-limit"))
	}
	if got := strings.Join(s.Daemons(), ","); got != "alpha,beta" {
		t.Errorf("Daemons %s", got)
	}
}

// Top-level keys apply to every daemon that has the flag; a section
// overrides them; lists become comma lists and mappings k=v,v;k2=v.
func TestFileValues(t *testing.T) {
	text := `# the fleet
stale: 90s
upstream:
  - 127.0.0.1:53
  - tls://127.0.0.2:853#dns.example
cluster: true
rate-limit: 50          # beta has no -rate-limit: it ignores this
forward:
  corp.example: [10.0.0.1:53, 10.0.0.2:53]
  lab.example: tls://10.0.0.3:853#lab
alpha:
  listen: 127.0.0.1:5300
  stale: 2m
beta:
  listen: "127.0.0.1:5400"
  upstream: []
`
	a, err := loadFile(t, "alpha", text, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.listen != "127.0.0.1:5300" || a.stale != 2*time.Minute || !a.cluster || a.rateLimit != 50 ||
		a.upstream != "127.0.0.1:53,tls://127.0.0.2:853#dns.example" ||
		a.forward != "corp.example=10.0.0.1:53,10.0.0.2:53;lab.example=tls://10.0.0.3:853#lab" {
		t.Errorf("alpha: %+v", *a)
	}
	b, err := loadFile(t, "beta", text, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b.listen != "127.0.0.1:5400" || b.stale != 90*time.Second || b.upstream != "" || !b.cluster {
		t.Errorf("beta: %+v", *b)
	}
}

// Command line, then environment, then file, then default.
func TestFilePrecedence(t *testing.T) {
	text := "stale: 3m\nupstream: 127.0.0.9:53\ncluster: true\nalpha:\n  listen: 127.0.0.1:1\n"
	a, err := loadFile(t, "alpha", text, []string{"-stale", "1m", "-cluster=false"}, map[string]string{"SHARDNS_STALE": "2m", "SHARDNS_UPSTREAM": "127.0.0.8:53"})
	if err != nil {
		t.Fatal(err)
	}
	if a.stale != time.Minute || a.cluster {
		t.Errorf("the command line must win: stale %v cluster %v", a.stale, a.cluster)
	}
	if a.upstream != "127.0.0.8:53" {
		t.Errorf("the environment must beat the file: upstream %q", a.upstream)
	}
	if a.listen != "127.0.0.1:1" {
		t.Errorf("the file must beat the default: listen %q", a.listen)
	}
	if a.rateLimit != 0 {
		t.Errorf("default: rate-limit %v", a.rateLimit)
	}
	// $SHARDNS_CONFIG names the file as -config does.
	path := filepath.Join(t.TempDir(), "f.yaml")
	if err := os.WriteFile(path, []byte("stale: 7m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &fleetDaemon{name: "alpha"}
	if err := config.Load(config.FlagSet("alpha", d, os.Stderr), nil, env(map[string]string{"SHARDNS_CONFIG": path}), testSchema(), "alpha"); err != nil || d.stale != 7*time.Minute {
		t.Errorf("SHARDNS_CONFIG: stale %v err %v", d.stale, err)
	}
}

// Every mistake is refused with the file, the line and the key.
func TestFileErrors(t *testing.T) {
	for _, tc := range []struct{ text, want string }{
		{"listen: :53\n", `shardns.yaml:1: listen: -listen means another thing in each daemon: set it in a section (alpha:, beta:)`},
		{"stale: 1m\nnope: 1\n", `shardns.yaml:2: nope: unknown key: no daemon (alpha, beta) has -nope`},
		{"alpha:\n  stale: 1m\n  nope: 1\n", `shardns.yaml:3: alpha.nope: unknown key: alpha has no -nope`},
		{"beta:\n  rate-limit: 5\n", `shardns.yaml:2: beta.rate-limit: unknown key: beta has no -rate-limit (alpha has)`},
		{"alpha:\n\n  rate-limit: x\n", `shardns.yaml:3: alpha.rate-limit: invalid value "x": `},
		{"stale: 30\n", `shardns.yaml:1: stale: invalid value "30": `},
		{"cluster: maybe\n", `shardns.yaml:1: cluster: invalid value "maybe": `},
		{"stale: [1m, 2m]\n", `shardns.yaml:1: stale: wrong type: a list, where -stale takes a duration`},
		{"cluster:\n  a: b\n", `shardns.yaml:2: cluster: wrong type: a mapping, where -cluster takes a boolean`},
		{"upstream:\n", `shardns.yaml:1: upstream: line 1: no value (write '' for an empty one)`},
		{"upstream: [a, [b]]\n", `shardns.yaml:1: upstream: line 1: a list item must be a scalar, not a list`},
		{"upstream: ['a,b']\n", `shardns.yaml:1: upstream: line 1: list item "a,b": must be non-empty and hold no ',' or ';'`},
		{"forward:\n  a=b: c\n", `shardns.yaml:2: forward: line 2: mapping key "a=b": must be non-empty and hold no '=', ';' or ','`},
		{"forward:\n  a: {b: c}\n", `shardns.yaml:2: forward: line 2: the value of "a" must be a scalar or a list, not a mapping`},
		{"stale: 1m\nstale: 2m\n", `shardns.yaml:2: stale: set twice (first at line 1)`},
		{"alpha:\n  stale: 1m\n  stale: 2m\n", `shardns.yaml:3: alpha.stale: set twice (first at line 2)`},
		{"alpha: 5\n", `shardns.yaml:1: alpha: a daemon's section must be a mapping of settings, not a scalar`},
		{"- a\n- b\n", `shardns.yaml:1: the file must be a mapping of settings (key: value), not a list`},
		{"config: x.yaml\n", `shardns.yaml:1: config: -config cannot be set in the file`},
		{"alpha:\n  version: true\n", `shardns.yaml:2: alpha.version: unknown key: -version cannot be set in the file`},
		{"stale: 1m\n---\nstale: 2m\n", `shardns.yaml:2: a second YAML document`},
		{"stale: [1m\n", `shardns.yaml: yaml: `},
		{"? [a]\n: b\n", `shardns.yaml:1: a key must be a flag or daemon name, not a list`},
	} {
		_, err := loadFile(t, "alpha", tc.text, nil, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
			t.Errorf("%q: error %v, want it to contain %q", tc.text, err, tc.want)
		}
	}
}

// Keys of the other daemons' sections are checked too, their values by
// the daemon that reads them.
func TestFileChecksEverySection(t *testing.T) {
	text := "alpha:\n  listen: 127.0.0.1:1\nbeta:\n  listne: 127.0.0.1:2\n"
	if _, err := loadFile(t, "alpha", text, nil, nil); err == nil || !strings.Contains(err.Error(), "shardns.yaml:4: beta.listne: unknown key") {
		t.Errorf("alpha loading a typo in beta's section: %v", err)
	}
}

// An empty file, or one of comments only, sets nothing; so does a section
// with nothing in it. Aliases are followed.
func TestFileEmptyAndAliases(t *testing.T) {
	for _, text := range []string{"", "# nothing\n", "alpha:\n", "---\n"} {
		a, err := loadFile(t, "alpha", text, nil, nil)
		if err != nil || a.stale != time.Hour {
			t.Errorf("%q: stale %v err %v", text, a.stale, err)
		}
	}
	a, err := loadFile(t, "alpha", "upstream: &ups [127.0.0.1:53, 127.0.0.2:53]\nforward:\n  corp.example: *ups\n", nil, nil)
	if err != nil || a.forward != "corp.example=127.0.0.1:53,127.0.0.2:53" {
		t.Errorf("alias: forward %q err %v", a.forward, err)
	}
}

// A file larger than MaxFileSize is refused whole.
func TestFileTooLarge(t *testing.T) {
	text := "stale: 1m\n" + strings.Repeat("# padding\n", config.MaxFileSize/10+1)
	if _, err := loadFile(t, "alpha", text, nil, nil); err == nil || !strings.Contains(err.Error(), "more than") {
		t.Errorf("large file: %v", err)
	}
}

// The -version flag never reads its SHARDNS_ variable, -config does.
func TestVersionIsCommandLineOnly(t *testing.T) {
	d := &fleetDaemon{name: "alpha"}
	fs := config.FlagSet("alpha", d, os.Stderr)
	if err := config.Load(fs, nil, env(map[string]string{"SHARDNS_VERSION": "1.2"}), testSchema(), "alpha"); err != nil {
		t.Fatalf("SHARDNS_VERSION must be ignored: %v", err)
	}
	if fs.Lookup(config.VersionFlag).Value.String() != "false" {
		t.Error("SHARDNS_VERSION set -version")
	}
}

// FuzzConfigFile reads arbitrary files: no panic, every error names the
// file, every setting is a flag of the daemon whose key ends in its name.
func FuzzConfigFile(f *testing.F) {
	for _, seed := range []string{
		"stale: 90s\nupstream: [a:53, b:53]\nalpha:\n  listen: 127.0.0.1:1\n",
		"forward:\n  corp.example: [10.0.0.1:53]\n  lab.example: tls://x#y\n",
		"listen: x\n", "- a\n", "a: &x [1]\nb: *x\n", "alpha:\n  stale: [1]\n", "{}", "stale: 1m\n---\n",
		"alpha: {rate-limit: 5, cluster: yes}\nbeta: {upstream: ''}\n", "? [a]\n: b\n", "\xff\x00",
	} {
		f.Add([]byte(seed))
	}
	s := testSchema()
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, daemon := range []string{"alpha", "beta"} {
			ss, err := s.Settings("f.yaml", data, daemon)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "config: f.yaml") {
					t.Fatalf("error %q does not name the file", err)
				}
				continue
			}
			fs := flag.NewFlagSet(daemon, flag.ContinueOnError)
			(&fleetDaemon{name: daemon}).Register(fs)
			seen := map[string]bool{}
			for _, st := range ss {
				if fs.Lookup(st.Flag) == nil || !strings.HasSuffix(st.Key, st.Flag) || st.Line < 1 || seen[st.Flag] {
					t.Fatalf("setting %+v for %s", st, daemon)
				}
				seen[st.Flag] = true
			}
		}
	})
}
