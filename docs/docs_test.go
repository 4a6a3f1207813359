// Package docs holds the repository's documentation; its test checks that
// every link in the README, SECURITY.md and docs/ leads somewhere inside the
// repository.
package docs

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// pages are the Markdown files whose links are checked, relative to the
// repository root.
var pages = []string{"README.md", "SECURITY.md", "docs/architecture.md", "docs/operations.md", "docs/api.md"}

// linkRE matches an inline Markdown link or image: [text](target).
var linkRE = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)

// headingRE matches an ATX heading line.
var headingRE = regexp.MustCompile(`^#{1,6}\s+(.*?)\s*#*\s*$`)

// TestLinks checks every link of every page: no link leaves the repository
// (no URL, no path above the root), every file or folder linked exists, and
// every #fragment names a heading of the page it points at.
func TestLinks(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, page := range pages {
		text, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			t.Errorf("%s: %v", page, err)
			continue
		}
		for _, target := range links(string(text)) {
			if msg := checkLink(root, page, target); msg != "" {
				t.Errorf("%s: link %q: %s", page, target, msg)
			}
		}
	}
}

// checkLink says what is wrong with target, a link on page, or "".
func checkLink(root, page, target string) string {
	if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") || strings.HasPrefix(target, "//") {
		return "points outside the repository"
	}
	path, frag, _ := strings.Cut(target, "#")
	file := filepath.Join(root, page)
	if path != "" {
		file = filepath.Join(filepath.Dir(file), filepath.FromSlash(path))
		rel, err := filepath.Rel(root, file)
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return "points outside the repository"
		}
		info, err := os.Stat(file)
		if err != nil {
			return "no such file or folder"
		}
		if info.IsDir() {
			if frag != "" {
				return "a fragment on a folder"
			}
			return ""
		}
	}
	if frag == "" {
		return ""
	}
	if !strings.HasSuffix(file, ".md") {
		return "a fragment on a file that is not Markdown"
	}
	text, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	for _, a := range anchors(string(text)) {
		if a == frag {
			return ""
		}
	}
	return "no heading with that anchor"
}

// links returns the targets of the inline links of a Markdown text, outside
// fenced code blocks and code spans.
func links(text string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced || strings.HasPrefix(line, "    ") {
			continue
		}
		for _, m := range linkRE.FindAllStringSubmatch(stripCode(line), -1) {
			out = append(out, m[1])
		}
	}
	return out
}

// stripCode removes the code spans of a line.
func stripCode(line string) string {
	var b strings.Builder
	in := false
	for _, r := range line {
		if r == '`' {
			in = !in
			continue
		}
		if !in {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// anchors returns the anchors of a Markdown text's headings as GitHub makes
// them: lowercased, punctuation dropped, spaces made hyphens, and a repeated
// anchor numbered (-1, -2, ...).
func anchors(text string) []string {
	var out []string
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		m := headingRE.FindStringSubmatch(line)
		if fenced || m == nil {
			continue
		}
		a := slug(m[1])
		if n := seen[a]; n > 0 {
			seen[a]++
			a = a + "-" + strconv.Itoa(n)
		} else {
			seen[a] = 1
		}
		out = append(out, a)
	}
	return out
}

// slug is GitHub's anchor of a heading's text.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// TestSlug pins the anchor rule on headings these pages use.
func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		"The DNS edge: what dnsd does with what it is sent": "the-dns-edge-what-dnsd-does-with-what-it-is-sent",
		"As this host's resolver":                           "as-this-hosts-resolver",
		"gRPC: resolverd's services":                        "grpc-resolverds-services",
		"Metrics, the document, the status page":            "metrics-the-document-the-status-page",
		"`cacheapi` flags":                                  "cacheapi-flags",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestCheckLinkRefuses shows that the link check can fail: each of these
// links is refused.
func TestCheckLinkRefuses(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{
		"https://example.com/",
		"../../beside-the-repository/elsewhere.md",
		"docs/missing.md",
		"docs/api.md#no-such-heading",
		"#no-such-heading",
		"go.mod#module",
	} {
		if msg := checkLink(root, "README.md", target); msg == "" {
			t.Errorf("link %q accepted", target)
		}
	}
}
