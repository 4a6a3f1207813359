package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// coreDNSModule is the CoreDNS release bench builds when -coredns names no
// binary: Debian has no package of it.
const coreDNSModule = "github.com/coredns/coredns@v1.15.0"

// coreDNS returns the CoreDNS binary of the run: -coredns when it names
// one, none for "off", else the pinned release, built once with go install
// into the user's cache folder (a couple of minutes the first time).
func coreDNS(ctx context.Context, flagValue string, log *slog.Logger) (string, error) {
	switch flagValue {
	case "off":
		return "", nil
	case "":
	default:
		if _, err := os.Stat(flagValue); err != nil {
			return "", fmt.Errorf("bench: -coredns: %w", err)
		}
		return flagValue, nil
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("bench: coredns: %w", err)
	}
	dir := filepath.Join(cache, "shardns-bench", filepath.Base(coreDNSModule))
	bin := filepath.Join(dir, "coredns")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	log.Info("building CoreDNS once", "module", coreDNSModule, "into", dir)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", coreDNSModule)
	cmd.Dir = os.TempDir() // outside any module: go install pkg@version builds it on its own
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("bench: go install %s: %w\n%s", coreDNSModule, err, out)
	}
	return bin, nil
}

// coreDNSVersion is what coredns -version says, e.g. 1.15.0.
func coreDNSVersion(ctx context.Context, bin string) string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, _ := exec.CommandContext(ctx, bin, "-version").Output()
	if m := regexp.MustCompile(`CoreDNS-(\d+\.\d+\.\d+)`).FindSubmatch(out); m != nil {
		return string(m[1])
	}
	return ""
}

// coreDNSSetting describes CoreDNS's configuration for the report.
func coreDNSSetting(bin string, capacity int) string {
	if bin == "" {
		return "left out of this run (-coredns off, or it could not be built: see the log)"
	}
	return fmt.Sprintf("%s: plugins cache (success and denial capacity %d each), forward . nsd, errors; GOMAXPROCS from the CPUs it is pinned to", coreDNSModule, capacity)
}
