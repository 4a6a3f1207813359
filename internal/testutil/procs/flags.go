package procs

import "strings"

// WithFlag returns args with "-name value" added unless args already set
// -name (as -name, --name, -name=… or --name=…). Tests start dnsd through
// it with -http: dnsd serves HTTP on a fixed loopback port by default,
// which two daemons at once, or another program, would contend for.
func WithFlag(args []string, name, value string) []string {
	if HasFlag(args, name) {
		return args
	}
	return append(append([]string(nil), args...), "-"+name, value)
}

// HasFlag reports whether args set the flag name, in any of the forms the
// flag package reads. It stops at "--". The daemons take no positional
// arguments, so every argument is looked at; a flag's value spelled like
// "-name" counts too.
func HasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") {
			continue
		}
		a = strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}
