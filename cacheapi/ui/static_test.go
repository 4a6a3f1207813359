package ui_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestPageHasNoInlineCode checks index.html against what the
// Content-Security-Policy would block: inline scripts, style elements and
// attributes, event handler attributes and javascript: URLs.
func TestPageHasNoInlineCode(t *testing.T) {
	page, err := os.ReadFile("index.html")
	if err != nil {
		t.Fatal(err)
	}
	z := html.NewTokenizer(strings.NewReader(string(page)))
	var scripts, sheets int
	inScript := false
	for range 100000 {
		tt := z.Next()
		if tt == html.ErrorToken {
			break
		}
		tok := z.Token()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			attrs := map[string]string{}
			for _, a := range tok.Attr {
				attrs[a.Key] = a.Val
				switch {
				case strings.HasPrefix(a.Key, "on"):
					t.Errorf("<%s %s=...>: inline event handler", tok.Data, a.Key)
				case a.Key == "style":
					t.Errorf("<%s style=...>: inline style", tok.Data)
				case strings.HasPrefix(strings.TrimSpace(strings.ToLower(a.Val)), "javascript:"):
					t.Errorf("<%s %s=%q>: javascript: URL", tok.Data, a.Key, a.Val)
				}
			}
			switch tok.Data {
			case "script":
				scripts++
				inScript = true
				if attrs["src"] != "ui/app.js" {
					t.Errorf("<script> with src %q, want ui/app.js", attrs["src"])
				}
			case "style":
				t.Error("<style> element: inline style")
			case "link":
				if attrs["rel"] == "stylesheet" {
					sheets++
					if attrs["href"] != "ui/style.css" {
						t.Errorf("style sheet %q, want ui/style.css", attrs["href"])
					}
				}
			}
		case html.TextToken:
			if inScript && strings.TrimSpace(tok.Data) != "" {
				t.Errorf("inline script: %q", tok.Data)
			}
		case html.EndTagToken:
			if tok.Data == "script" {
				inScript = false
			}
		}
	}
	if scripts != 1 || sheets != 1 {
		t.Errorf("%d scripts and %d style sheets, want one each", scripts, sheets)
	}
}

// TestScriptFindsItsElements checks that every id the script looks up
// exists in the page, once.
func TestScriptFindsItsElements(t *testing.T) {
	page, err := os.ReadFile("index.html")
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("app.js")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]int{}
	for _, m := range regexp.MustCompile(`\sid="([^"]+)"`).FindAllStringSubmatch(string(page), -1) {
		ids[m[1]]++
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q appears %d times in index.html", id, n)
		}
	}
	used := regexp.MustCompile(`byId\("([^"]+)"\)`).FindAllStringSubmatch(string(script), -1)
	if len(used) < 10 {
		t.Fatalf("app.js looks up only %d ids", len(used))
	}
	for _, m := range used {
		if ids[m[1]] == 0 {
			t.Errorf("app.js looks up id %q, absent from index.html", m[1])
		}
	}
	if strings.Contains(string(script), "innerHTML") || strings.Contains(string(script), "eval(") {
		t.Error("app.js writes markup or evaluates strings; it must set text only")
	}
}
