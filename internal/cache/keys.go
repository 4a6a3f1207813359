package cache

import "strings"

// Cache keys are laid out by dnsmsg.Key:
//
//	dns:{<name>}:<TYPE>:<CLASS>[:do][:cd]
//
// where <name> is the question name lowercased, in miekg/dns presentation
// format (escapes such as `\.` and `\032` included), with its final dot.
// What follows reads names back out of keys and builds the SCAN patterns
// that find every key of one name or of every name under a suffix. Names
// given to these functions must be in the same form.

// keyPrefix starts every cache key, up to the name.
const keyPrefix = "dns:{"

// KeyName returns the name part of a cache key, or false for a key that is
// not laid out as dnsmsg.Key lays them out.
func KeyName(key string) (string, bool) {
	if !strings.HasPrefix(key, keyPrefix) {
		return "", false
	}
	// The type and class after the name never hold a '}', so the last
	// "}:" ends the name even when the name itself holds one.
	end := strings.LastIndex(key, "}:")
	if end <= len(keyPrefix) {
		return "", false
	}
	name := key[len(keyPrefix):end]
	if name[len(name)-1] != '.' {
		return "", false
	}
	return name, true
}

// tagKey is a key with name's hash tag: it hashes to the shard that holds
// every key of name.
func tagKey(name string) string { return keyPrefix + name + "}:" }

// UnderName reports whether name is suffix or a name below it, comparing
// whole labels: "a.example.com." is under "example.com.", while
// "aexample.com." and `a\.example.com.` (one label "a.example") are not.
// Every name is under ".". Both must be in key form (lowercased, final dot).
func UnderName(name, suffix string) bool {
	if suffix == "." {
		return strings.HasSuffix(name, ".")
	}
	if !strings.HasSuffix(name, suffix) {
		return false
	}
	if len(name) == len(suffix) {
		return true
	}
	i := len(name) - len(suffix) - 1
	if name[i] != '.' {
		return false
	}
	// The dot is a label boundary unless it is escaped: an odd run of
	// backslashes before it escapes it (`\.`), an even one does not (`\\.`).
	bs := 0
	for j := i - 1; j >= 0 && name[j] == '\\'; j-- {
		bs++
	}
	return bs%2 == 0
}

// escapeGlob escapes the characters Redis's glob matcher treats as special.
func escapeGlob(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// namePattern is the SCAN MATCH pattern of every key of name. It can also
// match keys of other names that hold "}:" (KeyName tells them apart).
func namePattern(name string) string { return keyPrefix + escapeGlob(name) + "}:*" }

// suffixPattern is the SCAN MATCH pattern of every key of every name that
// ends in suffix as a string; UnderName then keeps those under it by label.
func suffixPattern(suffix string) string { return keyPrefix + "*" + escapeGlob(suffix) + "}:*" }
