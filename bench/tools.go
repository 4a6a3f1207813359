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

// folders are where bench finds the code it builds and the files it reads
// and writes.
type folders struct {
	repo  string // the shardns module: dnsd, resolverd, cacheapi
	bench string // this module: fixeddns, testdata, RESULTS.md, plots
}

// findFolders locates the bench module from the go command's view of the
// working folder, and the shardns module as its parent folder (bench's
// go.mod replaces github.com/shardns/shardns with ../).
func findFolders(ctx context.Context) (folders, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return folders{}, fmt.Errorf("bench: go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	b, err := os.ReadFile(gomod)
	if gomod == "" || gomod == os.DevNull || err != nil || !bytes.Contains(b, []byte("module "+benchModule+"\n")) {
		return folders{}, errors.New("bench: run inside the bench module (cd bench && go run .)")
	}
	f := folders{bench: filepath.Dir(gomod)}
	f.repo = filepath.Dir(f.bench)
	if _, err := os.Stat(filepath.Join(f.repo, "go.mod")); err != nil {
		return folders{}, fmt.Errorf("bench: the shardns module above %s: %w", f.bench, err)
	}
	return f, nil
}

// benchModule is the path of this module in its go.mod.
const benchModule = "github.com/shardns/shardns/bench"

// binaries are the programs built from this module.
type binaries struct {
	dnsd, resolverd, cacheapi, fixed string
}

// build compiles dnsd, resolverd and cacheapi in the shardns module and
// fixeddns in this one into dir, each with its own module's go.mod, so the
// servers are built with the versions they pin.
func build(ctx context.Context, f folders, dir string) (binaries, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	for _, b := range []struct {
		dir  string
		pkgs []string
	}{
		{f.repo, []string{"./dnsd", "./resolverd", "./cacheapi"}},
		{f.bench, []string{"./fixeddns"}},
	} {
		cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + string(filepath.Separator)}, b.pkgs...)...)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return binaries{}, fmt.Errorf("bench: go build in %s: %w\n%s", b.dir, err, out)
		}
	}
	return binaries{
		dnsd:      filepath.Join(dir, "dnsd"),
		resolverd: filepath.Join(dir, "resolverd"),
		cacheapi:  filepath.Join(dir, "cacheapi"),
		fixed:     filepath.Join(dir, "fixeddns"),
	}, nil
}
