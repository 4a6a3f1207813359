package deploy

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
)

// addressFlags are the daemon flags whose values name other services
// (comma lists of host:port).
var addressFlags = []string{"redis", "queue-redis", "resolver"}

// healthModes are the probes deploy/healthcheck knows.
var healthModes = []string{"http", "grpc", "dns"}

// loadCompose reads a compose file the way `docker compose` does: schema
// validation, interpolation of ${VAR:-default} from env (the shell's
// environment), YAML anchors and merges, paths made absolute. content nil
// reads the file itself.
func loadCompose(t *testing.T, content []byte, env map[string]string) *types.Project {
	t.Helper()
	p, err := tryLoadCompose(content, env)
	if err != nil {
		t.Fatalf("load docker-compose.yml: %v", err)
	}
	return p
}

func tryLoadCompose(content []byte, env map[string]string) (*types.Project, error) {
	root, err := filepath.Abs("..")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(root, "docker-compose.yml")
	if content == nil {
		if content, err = os.ReadFile(path); err != nil {
			return nil, err
		}
	}
	if env == nil {
		env = map[string]string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return loader.LoadWithContext(ctx, types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: content}},
		Environment: env,
	}, func(o *loader.Options) { o.SetProjectName("shardns", true) })
}

// daemonOf is the shardns daemon a service runs ("" for another image).
func daemonOf(s types.ServiceConfig) string {
	if len(s.Command) > 0 && slices.Contains(daemons, s.Command[0]) {
		return s.Command[0]
	}
	return ""
}

// settings is what a shardns service sets: each flag's value, from the
// command line or its SHARDNS_ variable.
func settings(s types.ServiceConfig, fs *flagSet) map[string]string {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	return fs.values(env, s.Command[1:])
}

// portOf is the port of a listen address like ":8080" or "0.0.0.0:8080".
func portOf(addr string) string {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return port
}

// checkCompose returns every problem with a loaded compose project that the
// fleet would hit at run time.
func checkCompose(p *types.Project, root string) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if len(p.Services) == 0 {
		add("no services")
	}
	for _, name := range p.ServiceNames() {
		s := p.Services[name]
		if s.Image == "" && s.Build == nil {
			add("%s: neither image nor build", name)
		}
		if s.Build != nil {
			if _, err := os.Stat(filepath.Join(s.Build.Context, s.Build.Dockerfile)); err != nil {
				add("%s: build: %v", name, err)
			}
		}
		if hc := s.HealthCheck; !oneShot(s) && (hc == nil || hc.Disable || len(hc.Test) < 2 || (hc.Test[0] != "CMD" && hc.Test[0] != "CMD-SHELL")) {
			add("%s: no healthcheck", name)
		}
		for dep, d := range s.DependsOn {
			target, ok := p.Services[dep]
			if !ok {
				add("%s: depends on unknown service %s", name, dep)
				continue
			}
			want := types.ServiceConditionHealthy
			if oneShot(target) {
				want = types.ServiceConditionCompletedSuccessfully
			}
			if d.Condition != want {
				add("%s: depends on %s with condition %q, want %s", name, dep, d.Condition, want)
			}
		}
		for _, v := range s.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if !strings.HasPrefix(v.Source, root+string(filepath.Separator)) {
				add("%s: mounts %s from outside the repository", name, v.Source)
			} else if fi, err := os.Stat(v.Source); err != nil || fi.IsDir() {
				add("%s: mounts %s, which is not a file in the repository", name, v.Source)
			}
		}
		if oneShot(s) {
			continue // runs once before the others (the secrets), checked by TestComposeSecrets
		}
		if strings.HasPrefix(s.Image, "redis") {
			errs = append(errs, checkRedisService(name, s)...)
			continue
		}
		d := daemonOf(s)
		if d == "" {
			add("%s: runs %q, not one of %v", name, s.Command, daemons)
			continue
		}
		errs = append(errs, checkDaemonService(p, name, s, accepted[d])...)
	}
	return errs
}

// oneShot reports whether s runs once and exits (restart "no"), as the
// service that makes the fleet's secrets does.
func oneShot(s types.ServiceConfig) bool { return s.Restart == types.RestartPolicyNo }

// checkRedisService checks a Redis service: it loads a config file mounted
// from the repository and publishes no port.
func checkRedisService(name string, s types.ServiceConfig) []error {
	var errs []error
	if len(s.Ports) > 0 {
		errs = append(errs, fmt.Errorf("%s: a Redis port is published: %v", name, s.Ports))
	}
	if len(s.Command) < 2 || s.Command[0] != "redis-server" {
		return append(errs, fmt.Errorf("%s: command %q does not start redis-server with a config file", name, s.Command))
	}
	conf := s.Command[1]
	if !slices.ContainsFunc(s.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Type == types.VolumeTypeBind && v.Target == conf }) {
		errs = append(errs, fmt.Errorf("%s: config %s is not mounted from the repository", name, conf))
	}
	return errs
}

// checkDaemonService checks a service running dnsd, resolverd or cacheapi
// against what the binary accepts.
func checkDaemonService(p *types.Project, name string, s types.ServiceConfig, fs *flagSet) []error {
	var errs []error
	add := func(format string, a ...any) { errs = append(errs, fmt.Errorf(name+": "+format, a...)) }
	for _, err := range fs.checkArgs(s.Command[1:]) {
		add("command: %v", err)
	}
	for k, v := range s.Environment {
		if v == nil {
			add("environment %s has no value", k)
			continue
		}
		if err := fs.checkEnv(k, *v); err != nil {
			add("environment: %v", err)
		}
	}
	set := settings(s, fs)
	for _, f := range addressFlags {
		for _, addr := range strings.Split(set[f], ",") {
			host, _, err := net.SplitHostPort(strings.TrimSpace(addr))
			if addr == "" {
				continue
			}
			if err != nil {
				add("-%s: %v", f, err)
				continue
			}
			if _, isService := p.Services[host]; isService {
				if d, ok := s.DependsOn[host]; !ok || d.Condition != types.ServiceConditionHealthy {
					add("-%s names %s but does not wait for it to be healthy", f, host)
				}
			}
		}
	}
	errs = append(errs, checkComposeConfig(name, s)...)
	listen := portOf(set["listen"])
	if listen == "" {
		add("no -listen port set")
	}
	for _, port := range s.Ports {
		if fmt.Sprint(port.Target) != listen {
			add("publishes container port %d, but listens on %q", port.Target, set["listen"])
		}
	}
	if hc := s.HealthCheck; hc != nil && len(hc.Test) > 0 {
		if err := checkProbe(hc.Test, listen); err != nil {
			add("healthcheck %q: %v", hc.Test, err)
		}
	}
	return errs
}

// checkProbe checks a healthcheck runs deploy/healthcheck on the service's
// own listen port.
func checkProbe(test []string, listen string) error {
	if len(test) < 4 || test[0] != "CMD" || test[1] != "healthcheck" || !slices.Contains(healthModes, test[2]) {
		return fmt.Errorf("want [CMD healthcheck %s ADDR]", strings.Join(healthModes, "|"))
	}
	target := test[3]
	if test[2] == "http" {
		u, err := url.Parse(target)
		if err != nil {
			return err
		}
		target = u.Host
	}
	host, port, err := net.SplitHostPort(target)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("probes %s, not the container's loopback", host)
	}
	if port != listen {
		return fmt.Errorf("probes port %s, but the daemon listens on %s", port, listen)
	}
	return nil
}

func TestCompose(t *testing.T) {
	p := loadCompose(t, nil, nil)
	for _, err := range checkCompose(p, repoRoot(t)) {
		t.Error(err)
	}

	// The fleet docs/architecture.md describes: four cache shards, one queue, two resolverd,
	// dnsd and cacheapi.
	count := map[string]int{}
	for _, s := range p.Services {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind {
				count[filepath.Base(v.Source)]++
			}
		}
		count[daemonOf(s)]++
	}
	for what, want := range map[string]int{"cache.conf": 4, "queue.conf": 1, "resolverd": 2, "dnsd": 1, "cacheapi": 1} {
		if count[what] != want {
			t.Errorf("%d services with %s, want %d", count[what], what, want)
		}
	}

	// Published: dnsd's 5353 over UDP and TCP, cacheapi's 8080; nothing else.
	published := map[string][]string{}
	for name, s := range p.Services {
		for _, port := range s.Ports {
			published[daemonOf(s)] = append(published[daemonOf(s)], port.Published+"/"+port.Protocol)
			if port.HostIP != "127.0.0.1" {
				t.Errorf("%s: published on %q by default, want 127.0.0.1", name, port.HostIP)
			}
		}
	}
	for d, want := range map[string][]string{"dnsd": {"5353/tcp", "5353/udp"}, "cacheapi": {"8080/tcp"}} {
		got := published[d]
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("%s publishes %v, want %v", d, got, want)
		}
		delete(published, d)
	}
	if len(published) > 0 {
		t.Errorf("other services publish ports: %v", published)
	}

	// Every frontend and resolverd uses all the shards, the queue and
	// (frontends) every resolverd; resolverd runs workers.
	for name, s := range p.Services {
		d := daemonOf(s)
		if d == "" {
			continue
		}
		set := settings(s, accepted[d])
		if got := len(strings.Split(set["redis"], ",")); got != 4 {
			t.Errorf("%s: -redis names %d shards, want 4", name, got)
		}
		if set["queue-redis"] == "" {
			t.Errorf("%s: no -queue-redis", name)
		}
		if d != "resolverd" && len(strings.Split(set["resolver"], ",")) != 2 {
			t.Errorf("%s: -resolver %q, want both resolverd", name, set["resolver"])
		}
		if d == "resolverd" && (set["workers"] == "" || set["workers"] == "0") {
			t.Errorf("%s: no workers", name)
		}
	}
}

// TestComposeUpstreamVariable shows one variable sets every resolverd's
// upstreams, with a default when it is unset.
func TestComposeUpstreamVariable(t *testing.T) {
	upstreams := func(p *types.Project) map[string]string {
		out := map[string]string{}
		for name, s := range p.Services {
			if v := s.Environment["SHARDNS_UPSTREAM"]; v != nil {
				out[name] = *v
			}
		}
		return out
	}
	def := upstreams(loadCompose(t, nil, nil))
	if len(def) != 2 {
		t.Fatalf("SHARDNS_UPSTREAM set on %v, want the two resolverd", def)
	}
	for name, v := range def {
		if v == "" || strings.Contains(v, "$") {
			t.Errorf("%s: default upstream %q", name, v)
		}
	}
	const mine = "127.0.0.1:5300,tls://127.0.0.1:853#dns.test"
	for name, v := range upstreams(loadCompose(t, nil, map[string]string{"SHARDNS_UPSTREAM": mine})) {
		if v != mine {
			t.Errorf("%s: SHARDNS_UPSTREAM=%s gave %q", name, mine, v)
		}
	}
	for name, s := range loadCompose(t, nil, map[string]string{"SHARDNS_BIND": "0.0.0.0"}).Services {
		for _, port := range s.Ports {
			if port.HostIP != "0.0.0.0" {
				t.Errorf("%s: SHARDNS_BIND=0.0.0.0 gave host_ip %q", name, port.HostIP)
			}
		}
	}
}

// TestComposeChecksCanFail breaks docker-compose.yml in the ways that would
// break the fleet and shows the checks catch each.
func TestComposeChecksCanFail(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(repoRoot(t), "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, old, new, want string }{
		{"unknown flag", `command: ["dnsd", "-http", ""]`, `command: ["dnsd", "-http", "", "-no-such-flag", "1"]`, "unknown flag -no-such-flag"},
		{"flag of another daemon", `command: ["cacheapi"]`, `command: ["cacheapi", "-zones", "/zones"]`, "unknown flag -zones"},
		{"misspelt variable", `SHARDNS_WORKERS: "8"`, `SHARDNS_WORKRES: "8"`, "reads no SHARDNS_WORKRES"},
		{"bad value", `SHARDNS_WORKERS: "8"`, `SHARDNS_WORKERS: "eight"`, `"eight"`},
		{"no healthcheck", `test: ["CMD", "healthcheck", "http", "http://127.0.0.1:8080/healthz"]`, `disable: true`, "cacheapi: no healthcheck"},
		{"probe on the wrong port", `"http://127.0.0.1:8080/healthz"`, `"http://127.0.0.1:8081/healthz"`, "probes port 8081"},
		{"started, not healthy", `queue: {condition: service_healthy}`, `queue: {condition: service_started}`, "service_started"},
		{"not waiting for a resolver", `resolverd-2: {condition: service_healthy}`, ``, "names resolverd-2 but does not wait"},
		{"missing config", `./deploy/redis/queue.conf:`, `./deploy/redis/nosuch.conf:`, "nosuch.conf"},
		{"published Redis", "      - queue-data:/data\n", "      - queue-data:/data\n    ports: [\"6379:6379\"]\n", "a Redis port is published"},
		{"config file not mounted", "    - ./deploy/shardns.yaml:/etc/shardns/shardns.yaml:ro\n", "", "is not deploy/shardns.yaml mounted there"},
		{"config file not named", "  SHARDNS_CONFIG: /etc/shardns/shardns.yaml\n", "", "neither -config nor SHARDNS_CONFIG"},
		{"config file refused", `command: ["cacheapi"]`, `command: ["cacheapi", "-config", "/run/secrets/shardns/redis-password"]`, "not deploy/shardns.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(string(orig), tc.old) {
				t.Fatalf("docker-compose.yml has no %q to break", tc.old)
			}
			p, err := tryLoadCompose([]byte(strings.Replace(string(orig), tc.old, tc.new, 1)), nil)
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			errs := checkCompose(p, repoRoot(t))
			if !slices.ContainsFunc(errs, func(e error) bool { return strings.Contains(e.Error(), tc.want) }) {
				t.Errorf("no problem mentioning %q found; got %v", tc.want, errs)
			}
		})
	}
}

// checkComposeConfig checks a daemon's service is given deploy/shardns.yaml
// (mounted read-only where -config or SHARDNS_CONFIG says) and that the
// daemon loads it, with the service's command line and variables, through
// the real parser.
func checkComposeConfig(name string, s types.ServiceConfig) []error {
	env := map[string]string{}
	for k, v := range s.Environment {
		if v != nil {
			env[k] = *v
		}
	}
	path := configPath(s.Command[1:], env)
	if path == "" {
		return []error{fmt.Errorf("%s: no config file: neither -config nor SHARDNS_CONFIG", name)}
	}
	host := ""
	for _, v := range s.Volumes {
		if v.Type == types.VolumeTypeBind && v.Target == path {
			if !v.ReadOnly {
				return []error{fmt.Errorf("%s: the config file %s is mounted writable", name, path)}
			}
			host = v.Source
		}
	}
	if filepath.Base(host) != "shardns.yaml" || filepath.Base(filepath.Dir(host)) != "deploy" {
		return []error{fmt.Errorf("%s: config file %s is not deploy/shardns.yaml mounted there (%q)", name, path, host)}
	}
	if _, err := loadMounted(daemonOf(s), s.Command[1:], env, path, host); err != nil {
		return []error{fmt.Errorf("%s: %w", name, err)}
	}
	return nil
}
