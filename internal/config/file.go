package config

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"go.yaml.in/yaml/v4"
)

// The config file (-config, $SHARDNS_CONFIG) is YAML: one mapping whose
// keys are flag names without the '-'. A top-level key applies to every
// daemon that has the flag (the others ignore it); a mapping under a
// daemon's name (dnsd:, resolverd:, cacheapi:) holds that daemon's own
// settings and overrides the top level. A flag whose meaning differs
// between daemons (-listen) may only be set in a section. Values are
// scalars; a list is the flag's comma list; a mapping of scalars or lists
// is the k=v,v;k2=v syntax (-forward). The command line and the SHARDNS_
// variables win over the file.

// MaxFileSize bounds the config file: a larger one is refused.
const MaxFileSize = 1 << 20

// Schema is what a config file may set: the flags of every daemon of the
// fleet. One file serves the whole fleet, so each daemon checks every key
// of it, not only the ones it reads, and a typo in any section is refused
// by whichever daemon loads the file.
type Schema struct {
	daemons   map[string]*flag.FlagSet
	names     []string            // the daemons, sorted
	owners    map[string][]string // flag → the daemons that have it, sorted
	perDaemon map[string]bool     // flags that mean another thing in each daemon
}

// NewSchema builds the schema of the fleet's daemons, by name. Two daemons'
// flags of one name mean the same when they have the same type, default
// and help (the flags of internal/config's shared groups do); otherwise
// the flag is per daemon and is refused at the top level of the file.
func NewSchema(daemons map[string]Daemon) *Schema {
	s := &Schema{daemons: map[string]*flag.FlagSet{}, owners: map[string][]string{}, perDaemon: map[string]bool{}}
	for name, d := range daemons {
		fs := flag.NewFlagSet(name, flag.ContinueOnError)
		d.Register(fs)
		s.daemons[name] = fs
		s.names = append(s.names, name)
	}
	slices.Sort(s.names)
	type meaning struct{ typ, def, usage string }
	first := map[string]meaning{}
	for _, name := range s.names {
		s.daemons[name].VisitAll(func(f *flag.Flag) {
			m := meaning{fmt.Sprintf("%T", f.Value), f.DefValue, f.Usage}
			if prev, ok := first[f.Name]; ok && prev != m {
				s.perDaemon[f.Name] = true
			} else if !ok {
				first[f.Name] = m
			}
			s.owners[f.Name] = append(s.owners[f.Name], name)
		})
	}
	return s
}

// Daemons are the daemons the schema knows, sorted: the names of the
// file's sections.
func (s *Schema) Daemons() []string { return slices.Clone(s.names) }

// PerDaemon reports whether flag means another thing in each daemon that
// has it, so that the file may only set it in a daemon's section.
func (s *Schema) PerDaemon(flag string) bool { return s.perDaemon[flag] }

// setting is one flag the file sets for a daemon.
type setting struct {
	flag  string // the flag's name
	key   string // as the file writes it: "stale" or "dnsd.stale"
	line  int
	value string // as the flag's Set takes it
}

// Settings reads a config file's content (named file in errors) and
// returns each flag it sets for daemon, as its Set takes the value, in
// the order of the file: the top-level keys, replaced by the daemon's
// section where both set a flag. Every key of every section is checked
// against the schema. An error names the file, the line and the key.
func (s *Schema) Settings(file string, data []byte, daemon string) ([]Setting, error) {
	ss, err := s.settings(file, data, daemon)
	out := make([]Setting, len(ss))
	for i, st := range ss {
		out[i] = Setting{Flag: st.flag, Key: st.key, Line: st.line, Value: st.value}
	}
	return out, err
}

// Setting is one flag a config file sets for a daemon (see Settings).
type Setting struct {
	Flag  string // the flag's name
	Key   string // as the file writes it: "stale" or "dnsd.stale"
	Line  int    // the key's line, from 1
	Value string // as the flag's Set takes it
}

func (s *Schema) settings(file string, data []byte, daemon string) ([]setting, error) {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("config: %s:%d: %s", file, line, fmt.Sprintf(format, args...))
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s: %d bytes, more than the %d a config file may hold", file, len(data), MaxFileSize)
	}
	if _, ok := s.daemons[daemon]; !ok {
		return nil, fmt.Errorf("config: %s: no daemon %q in the schema", file, daemon)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // an empty file sets nothing
		}
		return nil, fmt.Errorf("config: %s: %w", file, err)
	}
	var more yaml.Node
	switch err := dec.Decode(&more); {
	case err == nil:
		return nil, fail(more.Line, "a second YAML document: the file holds one mapping of settings")
	case !errors.Is(err, io.EOF):
		return nil, fmt.Errorf("config: %s: %w", file, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, nil
		}
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil // comments only
	}
	if root.Kind != yaml.MappingNode {
		return nil, fail(root.Line, "the file must be a mapping of settings (key: value), not %s", kindName(root))
	}

	var top, own []setting
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return nil, fail(k.Line, "a key must be a flag or daemon name, not %s", kindName(k))
		}
		key := k.Value
		if at, dup := seen[key]; dup {
			return nil, fail(k.Line, "%s: set twice (first at line %d)", key, at)
		}
		seen[key] = k.Line
		if fs, ok := s.daemons[key]; ok {
			sec, err := s.section(file, key, k, v, fs)
			if err != nil {
				return nil, err
			}
			if key == daemon {
				own = sec
			}
			continue
		}
		owners, err := s.topLevel(key)
		if err != nil {
			return nil, fail(k.Line, "%s: %v", key, err)
		}
		value, err := flagValue(s.daemons[owners[0]].Lookup(key), v)
		if err != nil {
			return nil, fail(valueLine(k, v), "%s: %v", key, err)
		}
		if slices.Contains(owners, daemon) {
			top = append(top, setting{flag: key, key: key, line: k.Line, value: value})
		}
	}
	// The section overrides the top level: each flag is set once.
	out := make([]setting, 0, len(top)+len(own))
	for _, t := range top {
		if !slices.ContainsFunc(own, func(o setting) bool { return o.flag == t.flag }) {
			out = append(out, t)
		}
	}
	return append(out, own...), nil
}

// topLevel returns the daemons that take key at the top level of the
// file, or why key is refused there.
func (s *Schema) topLevel(key string) ([]string, error) {
	if key == ConfigFlag || key == VersionFlag {
		return nil, fmt.Errorf("-%s cannot be set in the file", key)
	}
	owners := s.owners[key]
	if len(owners) == 0 {
		return nil, fmt.Errorf("unknown key: no daemon (%s) has -%s", strings.Join(s.names, ", "), key)
	}
	if s.perDaemon[key] {
		secs := make([]string, len(owners))
		for i, o := range owners {
			secs[i] = o + ":"
		}
		return nil, fmt.Errorf("-%s means another thing in each daemon: set it in a section (%s)", key, strings.Join(secs, ", "))
	}
	return owners, nil
}

// section reads the settings under daemon's name.
func (s *Schema) section(file, daemon string, k, v *yaml.Node, fs *flag.FlagSet) ([]setting, error) {
	fail := func(line int, format string, args ...any) error {
		return fmt.Errorf("config: %s:%d: %s", file, line, fmt.Sprintf(format, args...))
	}
	v = deref(v)
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		return nil, nil // "dnsd:" with nothing under it
	}
	if v.Kind != yaml.MappingNode {
		return nil, fail(valueLine(k, v), "%s: a daemon's section must be a mapping of settings, not %s", daemon, kindName(v))
	}
	var out []setting
	seen := map[string]int{}
	for i := 0; i+1 < len(v.Content); i += 2 {
		fk, fv := v.Content[i], v.Content[i+1]
		if fk.Kind != yaml.ScalarNode {
			return nil, fail(fk.Line, "%s: a key must be a flag name, not %s", daemon, kindName(fk))
		}
		key := daemon + "." + fk.Value
		if at, dup := seen[fk.Value]; dup {
			return nil, fail(fk.Line, "%s: set twice (first at line %d)", key, at)
		}
		seen[fk.Value] = fk.Line
		f := fs.Lookup(fk.Value)
		if f == nil {
			why := fmt.Sprintf("%s has no -%s", daemon, fk.Value)
			if fk.Value == ConfigFlag || fk.Value == VersionFlag {
				why = fmt.Sprintf("-%s cannot be set in the file", fk.Value)
			} else if others := s.owners[fk.Value]; len(others) > 0 {
				why += " (" + strings.Join(others, ", ") + " has)"
			}
			return nil, fail(fk.Line, "%s: unknown key: %s", key, why)
		}
		value, err := flagValue(f, fv)
		if err != nil {
			return nil, fail(valueLine(fk, fv), "%s: %v", key, err)
		}
		out = append(out, setting{flag: fk.Value, key: key, line: fk.Line, value: value})
	}
	return out, nil
}

// flagValue converts a YAML value to the string f's Set takes: a scalar
// as written, a list as a comma list, a mapping as k=v,v;k2=v. Lists and
// mappings are for flags that take text; a flag of another type (a
// number, a duration, a boolean) takes one scalar.
func flagValue(f *flag.Flag, n *yaml.Node) (string, error) {
	n = deref(n)
	typ := valueType(f)
	if n.Kind != yaml.ScalarNode && typ != "" {
		return "", fmt.Errorf("wrong type: %s, where -%s takes %s", kindName(n), f.Name, typ)
	}
	switch n.Kind {
	case yaml.ScalarNode:
		return scalar(n)
	case yaml.SequenceNode:
		return list(n)
	case yaml.MappingNode:
		parts := make([]string, 0, len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := deref(n.Content[i]), deref(n.Content[i+1])
			if k.Kind != yaml.ScalarNode {
				return "", fmt.Errorf("line %d: a key of the mapping must be a scalar, not %s", k.Line, kindName(k))
			}
			key, err := scalar(k)
			if err != nil {
				return "", err
			}
			if key == "" || strings.ContainsAny(key, "=;,") {
				return "", fmt.Errorf("line %d: mapping key %q: must be non-empty and hold no '=', ';' or ','", k.Line, key)
			}
			if seen[key] {
				return "", fmt.Errorf("line %d: mapping key %q set twice", k.Line, key)
			}
			seen[key] = true
			var val string
			switch v.Kind {
			case yaml.ScalarNode:
				if val, err = scalar(v); err == nil && strings.ContainsAny(val, ";,") {
					err = fmt.Errorf("line %d: %q holds a ';' or ',': write the items as a list", v.Line, val)
				}
			case yaml.SequenceNode:
				val, err = list(v)
			default:
				err = fmt.Errorf("line %d: the value of %q must be a scalar or a list, not %s", v.Line, key, kindName(v))
			}
			if err != nil {
				return "", err
			}
			parts = append(parts, key+"="+val)
		}
		return strings.Join(parts, ";"), nil
	}
	return "", fmt.Errorf("wrong type: %s", kindName(n))
}

// list joins a sequence of scalars with commas.
func list(n *yaml.Node) (string, error) {
	items := make([]string, 0, len(n.Content))
	for _, it := range n.Content {
		it = deref(it)
		if it.Kind != yaml.ScalarNode {
			return "", fmt.Errorf("line %d: a list item must be a scalar, not %s", it.Line, kindName(it))
		}
		s, err := scalar(it)
		if err != nil {
			return "", err
		}
		if s == "" || strings.ContainsAny(s, ",;") {
			return "", fmt.Errorf("line %d: list item %q: must be non-empty and hold no ',' or ';'", it.Line, s)
		}
		items = append(items, s)
	}
	return strings.Join(items, ","), nil
}

// scalar is a scalar's text; a null (a key with nothing after it) is
// refused, as it is more often a slip than an empty value.
func scalar(n *yaml.Node) (string, error) {
	if n.Tag == "!!null" {
		return "", fmt.Errorf("line %d: no value (write '' for an empty one)", n.Line)
	}
	return n.Value, nil
}

// deref follows an alias (*name) to the node it names.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 8; i++ {
		n = n.Alias
	}
	return n
}

// valueLine is where a value starts, or its key's line for an empty one.
func valueLine(k, v *yaml.Node) int {
	if v.Line > 0 {
		return v.Line
	}
	return k.Line
}

// valueType names what a flag that does not take text takes ("a number"),
// or is "" for a flag that takes text (and so a list or a mapping).
func valueType(f *flag.Flag) string {
	if b, ok := f.Value.(interface{ IsBoolFlag() bool }); ok && b.IsBoolFlag() {
		return "a boolean"
	}
	g, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch g.Get().(type) {
	case bool:
		return "a boolean"
	case int, int64, uint, uint64:
		return "an integer"
	case float64:
		return "a number"
	case time.Duration:
		return "a duration"
	}
	return ""
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	return "a scalar"
}

// fileParser is the ff config file parser of the fleet's file for daemon:
// it sets each flag the file sets for daemon through set (ff's, which
// leaves the flags the command line and the environment gave), and
// names the file, line and key of a value the flag refuses.
func (s *Schema) fileParser(file, daemon string) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		data, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
		if err != nil {
			return fmt.Errorf("config: %s: %w", file, err)
		}
		ss, err := s.settings(file, data, daemon)
		if err != nil {
			return err
		}
		for _, st := range ss {
			if err := set(st.flag, st.value); err != nil {
				if inner := errors.Unwrap(err); inner != nil {
					err = inner // ff's wrapping repeats the flag's name
				}
				return fmt.Errorf("config: %s:%d: %s: invalid value %q: %w", file, st.line, st.key, st.value, err)
			}
		}
		return nil
	}
}

// applyFile sets the flags of fs that are still unset (neither on the
// command line nor in the environment) from the file -config names, when
// it names one.
func (s *Schema) applyFile(fs *flag.FlagSet, daemon string) error {
	cf := fs.Lookup(ConfigFlag)
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	// ff.Parse runs fs.Parse on no arguments first, which keeps every
	// value set so far; the file then sets only the flags still unset.
	if err := ff.Parse(fs, nil, ff.WithConfigFileFlag(ConfigFlag), ff.WithConfigFileParser(s.fileParser(path, daemon))); err != nil {
		if strings.HasPrefix(err.Error(), "config: ") {
			return err
		}
		return fmt.Errorf("config: -config: %w", err)
	}
	return nil
}
