package deploy

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// dockerfile is deploy/Dockerfile read into its stages, with continued
// lines joined.
type dockerfile struct {
	stages [][]string // each stage's instructions, the FROM first
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "deploy", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var df dockerfile
	var cur string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if cur == "" && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if strings.HasSuffix(line, "\\") {
			cur += strings.TrimSuffix(line, "\\") + " "
			continue
		}
		inst := cur + line
		cur = ""
		if strings.HasPrefix(strings.ToUpper(inst), "FROM ") {
			df.stages = append(df.stages, nil)
		}
		if len(df.stages) == 0 {
			t.Fatalf("Dockerfile: %q before the first FROM", inst)
		}
		df.stages[len(df.stages)-1] = append(df.stages[len(df.stages)-1], inst)
	}
	if len(df.stages) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a build stage and a runtime stage", len(df.stages))
	}
	return df
}

// goBuildPackages are the packages the Dockerfile's go build compiles.
func (df dockerfile) goBuildPackages() []string {
	for _, inst := range df.stages[0] {
		if i := strings.Index(inst, "go build"); i >= 0 {
			var pkgs []string
			for _, f := range strings.Fields(inst[i:]) {
				if strings.HasPrefix(f, "./") {
					pkgs = append(pkgs, f)
				}
			}
			return pkgs
		}
	}
	return nil
}

// TestDockerfile checks deploy/Dockerfile builds static binaries of every
// daemon and the probe, and runs them as a non-root user in a minimal image.
func TestDockerfile(t *testing.T) {
	df := readDockerfile(t)
	build, run := strings.Join(df.stages[0], "\n"), df.stages[len(df.stages)-1]
	for _, want := range []string{"FROM golang:1.26 ", "CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w"`} {
		if !strings.Contains(build, want) {
			t.Errorf("build stage lacks %q", want)
		}
	}
	if !regexp.MustCompile(`^FROM (gcr\.io/distroless/static\S*:nonroot|scratch)\b`).MatchString(run[0]) {
		t.Errorf("runtime stage is %q, want distroless static nonroot or scratch", run[0])
	}
	var user string
	for _, inst := range run {
		if strings.HasPrefix(inst, "USER ") {
			user = strings.TrimSpace(strings.TrimPrefix(inst, "USER "))
		}
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "" || uid == "0" || uid == "root" {
		t.Errorf("runtime stage runs as %q, want a non-root user", user)
	}

	// The binaries: the three daemons and the probe, each a main package.
	pkgs := df.goBuildPackages()
	var names []string
	for _, p := range pkgs {
		names = append(names, filepath.Base(p))
	}
	slices.Sort(names)
	if want := []string{"cacheapi", "dnsd", "healthcheck", "resolverd"}; !slices.Equal(names, want) {
		t.Errorf("go build makes %v, want %v", names, want)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-f", "{{.Name}}"}, pkgs...)...)
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", pkgs, err, out)
	}
	for _, name := range strings.Fields(string(out)) {
		if name != "main" {
			t.Errorf("go build lists package %s, not a command", name)
		}
	}

	// Every command and probe docker-compose.yml runs is in the image.
	for name, s := range loadCompose(t, nil, nil).Services {
		if s.Build == nil {
			continue
		}
		if !slices.Contains(names, s.Command[0]) {
			t.Errorf("%s runs %s, which the image lacks", name, s.Command[0])
		}
		if hc := s.HealthCheck; hc != nil && len(hc.Test) > 1 && hc.Test[0] == "CMD" && !slices.Contains(names, hc.Test[1]) {
			t.Errorf("%s probes with %s, which the image lacks", name, hc.Test[1])
		}
	}
}

// dockerignore is the patterns of .dockerignore, as regular expressions
// over slash-separated paths relative to the build context.
func dockerignore(t *testing.T) []*regexp.Regexp {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var res []*regexp.Regexp
	for _, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if strings.HasPrefix(line, "!") {
			t.Fatalf(".dockerignore: exceptions (%q) are not understood by this test", line)
		}
		var re strings.Builder
		re.WriteString("^")
		for p := strings.Trim(line, "/"); p != ""; {
			switch {
			case strings.HasPrefix(p, "**/"):
				re.WriteString("(.*/)?")
				p = p[3:]
			case strings.HasPrefix(p, "**"):
				re.WriteString(".*")
				p = p[2:]
			case p[0] == '*':
				re.WriteString("[^/]*")
				p = p[1:]
			case p[0] == '?':
				re.WriteString("[^/]")
				p = p[1:]
			default:
				re.WriteString(regexp.QuoteMeta(p[:1]))
				p = p[1:]
			}
		}
		re.WriteString("(/.*)?$") // a folder excludes what it holds
		res = append(res, regexp.MustCompile(re.String()))
	}
	return res
}

// TestDockerignore checks .dockerignore leaves in the build context every
// file the image's binaries are compiled from: Go files and embedded files
// of every package they import from this module, and go.mod and go.sum.
func TestDockerignore(t *testing.T) {
	ignore := dockerignore(t)
	ignored := func(p string) bool {
		return slices.ContainsFunc(ignore, func(re *regexp.Regexp) bool { return re.MatchString(p) })
	}
	for _, p := range []string{".git/config", "docker-compose.yml", "deploy/k8s/x.yaml", "dnsd/x.test"} {
		if !ignored(p) {
			t.Errorf("%s is sent to the build; want it ignored", p)
		}
	}
	root := repoRoot(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", append([]string{"list", "-deps", "-f",
		`{{if .Module}}{{if .Module.Main}}{{$d := .Dir}}{{range .GoFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{range .EmbedFiles}}{{$d}}/{{.}}{{"\n"}}{{end}}{{end}}{{end}}`},
		readDockerfile(t).goBuildPackages()...)...)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := append(strings.Fields(string(out)), filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum"))
	if len(files) < 10 {
		t.Fatalf("go list found only %v", files)
	}
	for _, f := range files {
		rel, err := filepath.Rel(root, f)
		if err != nil {
			t.Fatal(err)
		}
		if ignored(filepath.ToSlash(rel)) {
			t.Errorf(".dockerignore leaves %s out of the build", rel)
		}
	}
}
