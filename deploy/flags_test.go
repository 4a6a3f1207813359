package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// flagSet is what a daemon's -h says it accepts: each flag with its value
// type ("" for a bool flag, else string, int, duration, float, ...), the
// SHARDNS_ variable of each flag, and the flags that have none (-version).
type flagSet struct {
	bin     string
	types   map[string]string // flag name → value type
	env     map[string]string // SHARDNS_ variable → flag name
	cmdOnly map[string]bool   // flags -h marks "[command line only]"
}

var (
	helpFlagLine = regexp.MustCompile(`^  -([A-Za-z0-9][A-Za-z0-9_.-]*)(?: (\S+))?$`)
	helpEnv      = regexp.MustCompile(`\[\$(SHARDNS_[A-Z0-9_]+)\]$`)
	helpCmdOnly  = regexp.MustCompile(`\[command line only\]$`)
)

// askHelp runs path -h and reads the flags from what it prints (the format
// of internal/config: "  -name type", then the usage ending in "[$VAR]").
func askHelp(path string) (*flagSet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "-h")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s -h: %w\n%s", path, err, out.String())
	}
	fs := &flagSet{bin: filepath.Base(path), types: map[string]string{}, env: map[string]string{}, cmdOnly: map[string]bool{}}
	last := ""
	sc := bufio.NewScanner(&out)
	for sc.Scan() {
		line := sc.Text()
		if m := helpFlagLine.FindStringSubmatch(line); m != nil {
			last = m[1]
			fs.types[last] = m[2]
			continue
		}
		if m := helpEnv.FindStringSubmatch(line); m != nil && last != "" {
			fs.env[m[1]] = last
		}
		if helpCmdOnly.MatchString(line) && last != "" {
			fs.cmdOnly[last] = true
		}
	}
	if len(fs.types) == 0 {
		return nil, fmt.Errorf("%s -h lists no flags:\n%s", path, out.String())
	}
	for name := range fs.types {
		if fs.cmdOnly[name] {
			continue
		}
		if want := "SHARDNS_" + strings.ToUpper(strings.ReplaceAll(name, "-", "_")); fs.env[want] != name {
			return nil, fmt.Errorf("%s -h: flag -%s shows no [$%s]", path, name, want)
		}
	}
	return fs, nil
}

// checkArgs returns a problem for every argument the daemon would reject:
// an unknown flag, a flag without its value, a value of the wrong type, or
// a positional argument (the daemons take none).
func (fs *flagSet) checkArgs(args []string) []error {
	var errs []error
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			errs = append(errs, fmt.Errorf("%s: argument %q is not a flag", fs.bin, a))
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		typ, ok := fs.types[name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: unknown flag -%s", fs.bin, name))
			continue
		}
		if typ != "" && !hasValue {
			if i+1 == len(args) {
				errs = append(errs, fmt.Errorf("%s: flag -%s has no value", fs.bin, name))
				continue
			}
			i++
			value, hasValue = args[i], true
		}
		if hasValue {
			if err := checkValue(typ, value); err != nil {
				errs = append(errs, fmt.Errorf("%s: -%s %q: %w", fs.bin, name, value, err))
			}
		}
	}
	return errs
}

// checkEnv returns a problem when key is a SHARDNS_ variable the daemon
// does not read, or value does not parse as its flag's type.
func (fs *flagSet) checkEnv(key, value string) error {
	name, ok := fs.env[key]
	if !ok {
		return fmt.Errorf("%s reads no %s", fs.bin, key)
	}
	if value == "" {
		return nil // unset: the flag keeps its default
	}
	if err := checkValue(fs.types[name], value); err != nil {
		return fmt.Errorf("%s: %s=%q: %w", fs.bin, key, value, err)
	}
	return nil
}

// values returns each flag's value as the daemon would see it given env
// and args: the command line wins over the SHARDNS_ variable, as in
// internal/config.
func (fs *flagSet) values(env map[string]string, args []string) map[string]string {
	out := map[string]string{}
	for k, v := range env {
		if name, ok := fs.env[k]; ok && v != "" {
			out[name] = v
		}
	}
	for i := 0; i < len(args); i++ {
		name, value, ok := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if typ, known := fs.types[name]; known && !ok && typ != "" && i+1 < len(args) {
			i++
			value = args[i]
		}
		out[name] = value
	}
	return out
}

// checkValue parses value the way the flag package parses a flag of typ.
func checkValue(typ, value string) error {
	var err error
	switch typ {
	case "":
		_, err = strconv.ParseBool(value)
	case "int":
		_, err = strconv.ParseInt(value, 0, 64)
	case "uint":
		_, err = strconv.ParseUint(value, 0, 64)
	case "float":
		_, err = strconv.ParseFloat(value, 64)
	case "duration":
		_, err = time.ParseDuration(value)
	}
	return err
}

// TestHelpParsing shows the -h reader finds what every daemon has, and that
// checkArgs and checkEnv reject what no daemon has, so the checks built on
// them can fail.
func TestHelpParsing(t *testing.T) {
	for _, d := range daemons {
		fs := accepted[d]
		for _, f := range []string{"listen", "log-format", "log-level"} {
			if _, ok := fs.types[f]; !ok {
				t.Errorf("%s -h: no -%s found in %v", d, f, fs.types)
			}
		}
		if errs := fs.checkArgs([]string{"-listen", "127.0.0.1:1", "-log-level=debug"}); len(errs) > 0 {
			t.Errorf("%s: good args rejected: %v", d, errs)
		}
		for _, bad := range [][]string{{"-no-such-flag"}, {"-listen"}, {"extra"}, {"--no-such-flag=1"}} {
			if errs := fs.checkArgs(bad); len(errs) == 0 {
				t.Errorf("%s: args %q accepted", d, bad)
			}
		}
		if err := fs.checkEnv("SHARDNS_LISTEN", ":1"); err != nil {
			t.Errorf("%s: %v", d, err)
		}
		if err := fs.checkEnv("SHARDNS_NO_SUCH_FLAG", "1"); err == nil {
			t.Errorf("%s: SHARDNS_NO_SUCH_FLAG accepted", d)
		}
		// -config has its variable; -version is for the command line only.
		if fs.env["SHARDNS_CONFIG"] != "config" || !fs.cmdOnly["version"] || fs.env["SHARDNS_VERSION"] != "" {
			t.Errorf("%s -h: -config [$SHARDNS_CONFIG] or -version [command line only] missing", d)
		}
	}
	dnsd := accepted["dnsd"]
	for _, tc := range []struct {
		key, value string
		ok         bool
	}{
		{"SHARDNS_REDIS_CLUSTER", "true", true},
		{"SHARDNS_REDIS_CLUSTER", "yes", false},
		{"SHARDNS_L1", "1000", true},
		{"SHARDNS_L1", "1k", false},
		{"SHARDNS_STALE", "24h", true},
		{"SHARDNS_STALE", "1 day", false},
		{"SHARDNS_RATE_LIMIT", "0.5", true},
		{"SHARDNS_RATE_LIMIT", "x", false},
	} {
		if err := dnsd.checkEnv(tc.key, tc.value); (err == nil) != tc.ok {
			t.Errorf("dnsd %s=%q: error %v, want ok=%v", tc.key, tc.value, err, tc.ok)
		}
	}
	if errs := dnsd.checkArgs([]string{"-redis-cluster", "-l1", "10"}); len(errs) > 0 {
		t.Errorf("dnsd: a bool flag followed by a flag: %v", errs)
	}
}
