// Package buildinfo says which build of shardns is running: the module
// version and the version control revision Go recorded in the binary
// (runtime/debug.ReadBuildInfo), for -version and the shardns_build_info
// metric.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Unknown stands for a field the binary does not record: a build with
// -buildvcs=false has no revision, `go run` and `go build` in the module
// itself have the version "(devel)".
const Unknown = "unknown"

// Info is one binary's build.
type Info struct {
	// Version is the main module's version ("v1.2.3", or "(devel)" for a
	// build of a checked-out tree).
	Version string
	// Revision is the VCS revision the binary was built from, Unknown when
	// not recorded.
	Revision string
	// Time is the revision's commit time (RFC 3339), Unknown when not
	// recorded.
	Time string
	// Modified is true when the tree had uncommitted changes.
	Modified bool
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string
}

// Read returns the running binary's build.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return From(bi, ok)
}

// From is Read's work on a given build record (ok false: none recorded).
func From(bi *debug.BuildInfo, ok bool) Info {
	in := Info{Version: Unknown, Revision: Unknown, Time: Unknown, GoVersion: runtime.Version()}
	if !ok || bi == nil {
		return in
	}
	if bi.Main.Version != "" {
		in.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		in.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			in.Revision = s.Value
		case "vcs.time":
			in.Time = s.Value
		case "vcs.modified":
			in.Modified = s.Value == "true"
		}
	}
	return in
}

// String is the line -version prints for the program name: name, version,
// revision and its time, Go version and platform.
func (in Info) String(name string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s revision %s", name, in.Version, in.Revision)
	if in.Modified {
		b.WriteString("+modified")
	}
	fmt.Fprintf(&b, " time %s %s %s/%s", in.Time, in.GoVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
