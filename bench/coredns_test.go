package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCoreDNSFlag(t *testing.T) {
	ctx, log := context.Background(), slog.New(slog.NewTextHandler(io.Discard, nil))
	if bin, err := coreDNS(ctx, "off", log); bin != "" || err != nil {
		t.Errorf(`coreDNS("off") = %q, %v; want "", nil`, bin, err)
	}
	if _, err := coreDNS(ctx, filepath.Join(t.TempDir(), "missing"), log); err == nil {
		t.Error("a missing binary: no error")
	}
	given := filepath.Join(t.TempDir(), "coredns")
	if err := os.WriteFile(given, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if bin, err := coreDNS(ctx, given, log); bin != given || err != nil {
		t.Errorf("coreDNS(%q) = %q, %v", given, bin, err)
	}
	if s := coreDNSSetting("", 100); !strings.Contains(s, "left out") {
		t.Errorf("setting without a binary: %q", s)
	}
	if s := coreDNSSetting(given, 100100); !strings.Contains(s, "100100") || !strings.Contains(s, coreDNSModule) {
		t.Errorf("setting: %q", s)
	}
}
