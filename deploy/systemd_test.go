package deploy

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// unit is a systemd unit file: each section's settings in order, with
// repeated keys kept.
type unit struct {
	path     string
	sections map[string][][2]string
}

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{path: path, sections: map[string][][2]string{}}
	section, cont := "", ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cont != "" {
			line = cont + line
			cont = ""
		}
		if line == "" || line[0] == '#' || line[0] == ';' {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cont = strings.TrimSuffix(line, "\\") + " "
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			section = line[1 : len(line)-1]
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not key=value", path, line)
		}
		u.sections[section] = append(u.sections[section], [2]string{strings.TrimSpace(k), strings.TrimSpace(v)})
	}
	return u
}

// get returns the values of key in section.
func (u unit) get(section, key string) []string {
	var out []string
	for _, kv := range u.sections[section] {
		if kv[0] == key {
			out = append(out, kv[1])
		}
	}
	return out
}

// units reads deploy/systemd/shardns-<daemon>.service for every daemon.
func units(t *testing.T) map[string]unit {
	t.Helper()
	out := map[string]unit{}
	for _, d := range daemons {
		out[d] = readUnit(t, filepath.Join(repoRoot(t), "deploy", "systemd", "shardns-"+d+".service"))
	}
	return out
}

// hardening is what every unit must set, beyond the per-daemon privileges.
var hardening = map[string]string{
	"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
	"PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
	"ProtectControlGroups": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes", "RestrictSUIDSGID": "yes",
	"LockPersonality": "yes", "MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native",
	"SystemCallFilter": "@system-service", "EnvironmentFile": "-/etc/default/shardns",
}

// TestSystemdUnits checks each unit runs its daemon with flags the binary
// accepts, hardened, and dnsd with the one capability port 53 needs.
func TestSystemdUnits(t *testing.T) {
	for d, u := range units(t) {
		start := u.get("Service", "ExecStart")
		if len(start) != 1 {
			t.Errorf("%s: %d ExecStart lines, want 1", d, len(start))
			continue
		}
		argv := strings.Fields(start[0])
		if argv[0] != "/usr/local/bin/"+d {
			t.Errorf("%s: runs %s", d, argv[0])
		}
		for _, err := range accepted[d].checkArgs(argv[1:]) {
			t.Errorf("%s unit: %v", d, err)
		}
		if !slices.Equal(argv[1:], []string{"-config", etcConfig}) {
			t.Errorf("%s: runs with %q, want -config %s and the settings there", d, argv[1:], etcConfig)
		}
		loaded, err := loadDaemon(t, d, argv[1:], nil, "")
		if err != nil {
			t.Errorf("%s unit: %v", d, err)
			continue
		}
		if got := u.get("Service", "Type"); !slices.Equal(got, []string{"notify"}) {
			t.Errorf("%s: Type=%v, want notify (the daemon tells systemd READY=1)", d, got)
		}
		if got := u.get("Service", "ExecReload"); !slices.Equal(got, []string{"/bin/kill -HUP $MAINPID"}) {
			t.Errorf("%s: ExecReload=%v, want /bin/kill -HUP $MAINPID", d, got)
		}
		if got := u.get("Service", "ConfigurationDirectory"); !slices.Equal(got, []string{"shardns"}) {
			t.Errorf("%s: ConfigurationDirectory=%v, want shardns (/etc/shardns)", d, got)
		}
		for _, env := range u.get("Service", "Environment") {
			for _, kv := range strings.Fields(env) {
				k, v, _ := strings.Cut(strings.Trim(kv, `"`), "=")
				if err := accepted[d].checkEnv(k, v); err != nil {
					t.Errorf("%s unit: %v", d, err)
				}
			}
		}
		for k, want := range hardening {
			if !slices.Contains(u.get("Service", k), want) {
				t.Errorf("%s: %s=%s missing", d, k, want)
			}
		}
		families := strings.Join(u.get("Service", "RestrictAddressFamilies"), " ")
		for _, f := range []string{"AF_INET", "AF_INET6", "AF_UNIX"} {
			if !slices.Contains(strings.Fields(families), f) {
				t.Errorf("%s: RestrictAddressFamilies %q lacks %s", d, families, f)
			}
		}
		caps := u.get("Service", "CapabilityBoundingSet")
		if d == "dnsd" {
			listen := value(loaded, "listen")
			if portOf(listen) != "53" {
				t.Errorf("dnsd: listens on %q, want port 53", listen)
			}
			for _, k := range []string{"AmbientCapabilities", "CapabilityBoundingSet"} {
				if got := u.get("Service", k); !slices.Equal(got, []string{"CAP_NET_BIND_SERVICE"}) {
					t.Errorf("dnsd: %s=%v, want exactly CAP_NET_BIND_SERVICE", k, got)
				}
			}
		} else if !slices.Equal(caps, []string{""}) || len(u.get("Service", "AmbientCapabilities")) > 0 {
			t.Errorf("%s: capabilities %v, want none", d, caps)
		}
	}
}

// TestSystemdEnvFile checks every variable of deploy/systemd/shardns.env,
// set or commented out as an example, is read by a daemon and parses as
// its flag's type for each daemon that reads it.
func TestSystemdEnvFile(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", "shardns.env"))
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`^#?(SHARDNS_[A-Z0-9_]+)=(.*)$`)
	found := 0
	for _, l := range strings.Split(string(data), "\n") {
		m := line.FindStringSubmatch(strings.TrimSpace(l))
		if m == nil {
			if l != "" && !strings.HasPrefix(l, "#") {
				t.Errorf("shardns.env: %q is not a SHARDNS_ variable", l)
			}
			continue
		}
		found++
		readers := 0
		for _, d := range daemons {
			if _, ok := accepted[d].env[m[1]]; !ok {
				continue
			}
			readers++
			if err := accepted[d].checkEnv(m[1], m[2]); err != nil {
				t.Errorf("shardns.env: %v", err)
			}
		}
		if readers == 0 {
			t.Errorf("shardns.env: no daemon reads %s", m[1])
		}
		if m[1] == "SHARDNS_LISTEN" || m[1] == "SHARDNS_METRICS" {
			t.Errorf("shardns.env sets %s, which the three daemons need different", m[1])
		}
	}
	if found < 3 {
		t.Errorf("shardns.env: only %d variables", found)
	}
}

// TestSystemdVerify runs systemd-analyze verify on the units, with
// ExecStart pointing at the built binaries (verify checks they exist), and
// fails on any complaint about them. It logs each unit's exposure score.
func TestSystemdVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze", "systemd")
	dir := t.TempDir()
	var files []string
	for d := range units(t) {
		src := filepath.Join(repoRoot(t), "deploy", "systemd", "shardns-"+d+".service")
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "ExecStart=/usr/local/bin/"+d+" ", "ExecStart="+bin(d)+" ")
		dst := filepath.Join(dir, filepath.Base(src))
		if err := os.WriteFile(dst, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// With the Redis password drop-in, which verify reads from the
		// unit's .d folder beside it.
		dropIn, err := os.ReadFile(filepath.Join(repoRoot(t), "deploy", "systemd", "redis-password.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(dst+".d", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst+".d", "redis-password.conf"), dropIn, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, dst)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, analyze, append([]string{"verify", "--man=no"}, files...)...).CombinedOutput()
	if err != nil {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "shardns-") {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
	exposure := regexp.MustCompile(`Overall exposure level for (\S+): ([0-9.]+)`)
	for _, f := range files {
		out, err := exec.CommandContext(ctx, analyze, "security", "--offline=yes", f).CombinedOutput()
		m := exposure.FindSubmatch(out)
		if err != nil || m == nil {
			t.Logf("systemd-analyze security %s: %v (needs systemd 250 or later)", filepath.Base(f), err)
			continue
		}
		score, _ := strconv.ParseFloat(string(m[2]), 64)
		t.Logf("%s: exposure %.1f", m[1], score)
		if score > 2.5 {
			t.Errorf("%s: exposure %.1f, want at most 2.5 (systemd-analyze security)", m[1], score)
		}
	}
}

// TestSystemdVerifyCanFail shows verify rejects a unit whose binary is not
// there, so TestSystemdVerify's check means something.
func TestSystemdVerifyCanFail(t *testing.T) {
	analyze := need(t, "systemd-analyze", "systemd")
	dst := filepath.Join(t.TempDir(), "shardns-dnsd.service")
	if err := os.WriteFile(dst, []byte(fmt.Sprintf("[Service]\nExecStart=%s -listen :53\n", filepath.Join(t.TempDir(), "nodnsd"))), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, analyze, "verify", "--man=no", dst).CombinedOutput(); err == nil {
		t.Errorf("verify accepted a unit with a missing binary:\n%s", out)
	}
}

// TestSystemdRedisPasswordDropIn checks the drop-in hands every daemon the
// Redis password as a credential, through a variable each daemon reads.
func TestSystemdRedisPasswordDropIn(t *testing.T) {
	u := readUnit(t, filepath.Join(repoRoot(t), "deploy", "systemd", "redis-password.conf"))
	if got := u.get("Service", "LoadCredential"); !slices.Equal(got, []string{"redis-password:/etc/shardns/redis-password"}) {
		t.Errorf("LoadCredential=%v, want the password file as credential redis-password", got)
	}
	env := u.get("Service", "Environment")
	if !slices.Equal(env, []string{"SHARDNS_REDIS_PASSWORD_FILE=%d/redis-password"}) {
		t.Errorf("Environment=%v, want SHARDNS_REDIS_PASSWORD_FILE in the credentials folder", env)
	}
	for _, d := range daemons {
		if err := accepted[d].checkEnv("SHARDNS_REDIS_PASSWORD_FILE", "%d/redis-password"); err != nil {
			t.Error(err)
		}
	}
}
