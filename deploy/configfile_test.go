package deploy

import (
	"flag"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	cacheapi "github.com/shardns/shardns/cacheapi/app"
	dnsd "github.com/shardns/shardns/dnsd/app"
	"github.com/shardns/shardns/internal/config"
	fleet "github.com/shardns/shardns/internal/daemons"
	resolverd "github.com/shardns/shardns/resolverd/service"
)

// etcConfig is where every deployment puts deploy/shardns.yaml.
const etcConfig = "/etc/shardns/shardns.yaml"

// exampleConfig is deploy/shardns.yaml.
func exampleConfig(t testing.TB) string {
	return filepath.Join(repoRoot(t), "deploy", "shardns.yaml")
}

// newConfig is a fresh Config of daemon.
func newConfig(daemon string) config.Daemon {
	switch daemon {
	case "dnsd":
		return &dnsd.Config{}
	case "resolverd":
		return &resolverd.Config{}
	case "cacheapi":
		return &cacheapi.Config{}
	}
	panic("no daemon " + daemon)
}

// loadDaemon reads daemon's settings as its main does, from args, env and
// the config file they name, through the real parser; etcConfig is read
// from file (deploy/shardns.yaml when file is "").
func loadDaemon(t testing.TB, daemon string, args []string, env map[string]string, file string) (*flag.FlagSet, error) {
	t.Helper()
	if file == "" {
		file = exampleConfig(t)
	}
	return loadMounted(daemon, args, env, etcConfig, file)
}

// loadMounted is loadDaemon for a config file mounted from host at
// target in the daemon's container.
func loadMounted(daemon string, args []string, env map[string]string, target, host string) (*flag.FlagSet, error) {
	fix := func(v string) string {
		if v == target {
			return host
		}
		return v
	}
	args = append([]string(nil), args...)
	for i := range args {
		args[i] = fix(args[i])
	}
	fs := config.FlagSet(daemon, newConfig(daemon), io.Discard)
	err := config.Load(fs, args, func(k string) string { return fix(env[k]) }, fleet.Schema(), daemon)
	return fs, err
}

// value is a loaded flag's value.
func value(fs *flag.FlagSet, name string) string {
	if f := fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// TestExampleConfig loads deploy/shardns.yaml for every daemon through the
// real parser, and checks it sets what its comments say.
func TestExampleConfig(t *testing.T) {
	want := map[string]map[string]string{
		"dnsd":      {"listen": ":53", "metrics": "127.0.0.1:9153", "upstream": "1.1.1.1:53,9.9.9.9:53", "resolver": "127.0.0.1:50051", "redis": "127.0.0.1:6379", "http": "", "log-format": "json"},
		"resolverd": {"listen": "127.0.0.1:50051", "metrics": "127.0.0.1:9154", "upstream": "1.1.1.1:53,9.9.9.9:53", "workers": "4", "redis": "127.0.0.1:6379", "log-format": "json"},
		"cacheapi":  {"listen": "127.0.0.1:8080", "resolver": "127.0.0.1:50051", "redis": "127.0.0.1:6379", "log-format": "json"},
	}
	for _, d := range daemons {
		fs, err := loadDaemon(t, d, []string{"-config", etcConfig}, nil, "")
		if err != nil {
			t.Errorf("%s: %v", d, err)
			continue
		}
		for k, v := range want[d] {
			if got := value(fs, k); got != v {
				t.Errorf("%s: -%s %q, want %q", d, k, got, v)
			}
		}
	}
}

// commentedSetting is an example left commented out in the file: "#key:"
// or a list item "#  - item" under one.
var commentedSetting = regexp.MustCompile(`(?m)^(\s*)#([a-z][a-z0-9-]*:|\s+- )`)

// TestExampleConfigExamples uncomments every example setting of
// deploy/shardns.yaml: the file must still load for every daemon, so the
// examples name real flags with values they take.
func TestExampleConfigExamples(t *testing.T) {
	data, err := os.ReadFile(exampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	n := len(commentedSetting.FindAllIndex(data, -1))
	if n < 10 {
		t.Fatalf("only %d commented examples found", n)
	}
	path := filepath.Join(t.TempDir(), "shardns.yaml")
	if err := os.WriteFile(path, commentedSetting.ReplaceAll(data, []byte("$1$2")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, d := range daemons {
		if _, err := loadDaemon(t, d, []string{"-config", path}, nil, path); err != nil {
			t.Errorf("%s, examples uncommented: %v", d, err)
		}
	}
}

// The checks above fail on a broken file, naming the line.
func TestExampleConfigCanFail(t *testing.T) {
	data, err := os.ReadFile(exampleConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, want string }{
		{"  rate-slip: 2\n", "  rate-slip: two\n", `dnsd.rate-slip: invalid value "two"`},
		{"log-level: info\n", "log-level: info\nlisten: :53\n", "listen: -listen means another thing in each daemon"},
		{"  workers: 4\n", "  wrokers: 4\n", "resolverd.wrokers: unknown key"},
	} {
		if !strings.Contains(string(data), tc.from) {
			t.Fatalf("deploy/shardns.yaml lacks %q", tc.from)
		}
		path := filepath.Join(t.TempDir(), "shardns.yaml")
		if err := os.WriteFile(path, []byte(strings.Replace(string(data), tc.from, tc.to, 1)), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := loadDaemon(t, "dnsd", []string{"-config", path}, nil, path)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !regexp.MustCompile(`shardns\.yaml:\d+: `).MatchString(err.Error()) {
			t.Errorf("%q → %q: error %v, want %q with the line", tc.from, tc.to, err, tc.want)
		}
	}
}

// configPath is the config file a daemon is given: -config on its command
// line, else $SHARDNS_CONFIG.
func configPath(args []string, env map[string]string) string {
	for i, a := range args {
		name, v, ok := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == config.ConfigFlag && strings.HasPrefix(a, "-") {
			if ok {
				return v
			}
			if i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return env[config.EnvName(config.ConfigFlag)]
}
