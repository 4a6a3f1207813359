// Package deploy holds only tests: they check the deployment files
// (docker-compose.yml, deploy/Dockerfile, the Redis configs, the systemd
// units, the Kubernetes manifests and the Grafana dashboard) against the
// real binaries, since no container engine or cluster runs where the tests
// do.
package deploy

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// daemons are the shardns binaries a deployment file may run.
var daemons = []string{"dnsd", "resolverd", "cacheapi"}

// binDir holds dnsd, resolverd, cacheapi and healthcheck, built once by
// TestMain; accepted holds what each daemon's -h lists.
var (
	binDir   string
	accepted map[string]*flagSet
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "shardns-deploy-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// Daemons started without -token-file write their API token under
	// $XDG_CONFIG_HOME: keep it in the run's folder, not the user's.
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "config"))
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"github.com/shardns/shardns/dnsd", "github.com/shardns/shardns/resolverd",
		"github.com/shardns/shardns/cacheapi", "github.com/shardns/shardns/deploy/healthcheck")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "deploy: build binaries:", err)
		return 1
	}
	binDir = dir
	accepted = map[string]*flagSet{}
	for _, d := range daemons {
		fs, err := askHelp(filepath.Join(dir, d))
		if err != nil {
			fmt.Fprintln(os.Stderr, "deploy:", err)
			return 1
		}
		accepted[d] = fs
	}
	return m.Run()
}

// bin is the path of a built binary.
func bin(name string) string { return filepath.Join(binDir, name) }

// repoRoot is the repository's top folder (the tests run in deploy/).
func repoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}
