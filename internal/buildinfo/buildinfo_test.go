package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

func TestFrom(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/shardns/shardns", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef"},
			{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	in := From(bi, true)
	want := Info{Version: "v1.4.0", Revision: "0123456789abcdef", Time: "2026-12-01T10:00:00Z", Modified: true, GoVersion: "go1.99.1"}
	if in != want {
		t.Errorf("From = %+v, want %+v", in, want)
	}
	line := in.String("dnsd")
	for _, part := range []string{"dnsd v1.4.0", "revision 0123456789abcdef+modified", "time 2026-12-01T10:00:00Z", "go1.99.1", runtime.GOOS + "/" + runtime.GOARCH} {
		if !strings.Contains(line, part) {
			t.Errorf("%q lacks %q", line, part)
		}
	}
}

// Without a build record (or VCS stamping) every field says so.
func TestFromNothing(t *testing.T) {
	in := From(nil, false)
	if in.Version != Unknown || in.Revision != Unknown || in.Time != Unknown || in.GoVersion != runtime.Version() {
		t.Errorf("From(nil) = %+v", in)
	}
	in = From(&debug.BuildInfo{Main: debug.Module{Version: "(devel)"}}, true)
	if in.Version != "(devel)" || in.Revision != Unknown || in.Modified {
		t.Errorf("From(devel) = %+v", in)
	}
	if s := in.String("resolverd"); !strings.HasPrefix(s, "resolverd (devel) revision unknown time unknown ") {
		t.Errorf("String = %q", s)
	}
}

// A test binary has a build record; Read finds the Go version in it.
func TestRead(t *testing.T) {
	if in := Read(); in.GoVersion != runtime.Version() {
		t.Errorf("Read().GoVersion = %q, want %q", in.GoVersion, runtime.Version())
	}
}
