package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// tools are the outside programs a run needs.
type tools struct {
	dnsperf, nsd, unbound, dnsmasq, redis, taskset string
	coredns                                        string // "" when left out (see coreDNS)
}

// installHint names the Debian packages bench needs.
const installHint = "apt-get install -y dnsperf nsd unbound dnsmasq-base redis-server " +
	"(stop and disable the unbound service the package starts: systemctl disable --now unbound)"

// findTools looks every tool up on PATH and in the sbin folders.
func findTools() (tools, error) {
	var t tools
	var missing []string
	for _, x := range []struct {
		name string
		dst  *string
	}{{"dnsperf", &t.dnsperf}, {"nsd", &t.nsd}, {"unbound", &t.unbound}, {"dnsmasq", &t.dnsmasq}, {"redis-server", &t.redis}} {
		p := lookTool(x.name)
		if p == "" {
			missing = append(missing, x.name)
		}
		*x.dst = p
	}
	t.taskset = lookTool("taskset")
	if len(missing) > 0 {
		return t, fmt.Errorf("bench: %s not found: %s", strings.Join(missing, ", "), installHint)
	}
	return t, nil
}

func lookTool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// versions asks every tool for its version.
func (t tools) versions(ctx context.Context) [][2]string {
	out := [][2]string{}
	for _, x := range []struct {
		label, bin string
		args       []string
	}{
		{"dnsperf", t.dnsperf, []string{"-h"}},
		{"NSD", t.nsd, []string{"-v"}},
		{"Unbound", t.unbound, []string{"-V"}},
		{"dnsmasq", t.dnsmasq, []string{"--version"}},
		{"Redis", t.redis, []string{"--version"}},
	} {
		out = append(out, [2]string{x.label, toolVersion(ctx, x.bin, x.args...)})
	}
	if t.coredns != "" {
		out = append(out, [2]string{"CoreDNS", coreDNSVersion(ctx, t.coredns)})
	}
	return out
}

// toolVersion runs bin args and returns the first version number it
// prints, or "".
func toolVersion(ctx context.Context, bin string, args ...string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var buf bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdout, cmd.Stderr = &buf, &buf
	_ = cmd.Run() // dnsperf -h exits non-zero
	versionRe := regexp.MustCompile(`\d+\.\d+(\.\d+)?`)
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.Contains(strings.ToLower(line), "version") || strings.HasPrefix(line, "Redis server") {
			if v := versionRe.FindString(line); v != "" {
				return v
			}
		}
	}
	return ""
}

// moduleRoot is the folder of the shardns module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("bench: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("bench: run inside the shardns module (go run ./bench)")
	}
	return filepath.Dir(gomod), nil
}

// binaries are the programs built from this module.
type binaries struct {
	dnsd, resolverd, cacheapi, fixed string
}

// build compiles dnsd, resolverd, cacheapi and fixeddns into dir.
func build(ctx context.Context, root, dir string) (binaries, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(filepath.Separator), "./dnsd", "./resolverd", "./cacheapi", "./bench/fixeddns")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return binaries{}, fmt.Errorf("bench: go build: %w\n%s", err, out)
	}
	return binaries{
		dnsd:      filepath.Join(dir, "dnsd"),
		resolverd: filepath.Join(dir, "resolverd"),
		cacheapi:  filepath.Join(dir, "cacheapi"),
		fixed:     filepath.Join(dir, "fixeddns"),
	}, nil
}
