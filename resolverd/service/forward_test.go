package service

import (
	"reflect"
	"strings"
	"testing"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/resolverd/forward"
)

// TestResolverConfigForward checks that -forward alone is something to
// answer from, that its groups reach the resolver's Config, and that a bad
// spec is an error naming the flag.
func TestResolverConfigForward(t *testing.T) {
	got, err := ResolverConfig(Config{Resolving: config.Resolving{Forward: "corp.example=10.0.0.1:53,10.0.0.2:53", Trusted: "10.0.0.2:53"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []forward.Route{{Zone: "corp.example.", Upstreams: []string{"10.0.0.1:53", "10.0.0.2:53"}}}
	if !reflect.DeepEqual(got.Forward, want) || len(got.Upstreams) != 0 || !reflect.DeepEqual(got.Trusted, []string{"10.0.0.2:53"}) {
		t.Errorf("config %+v", got)
	}
	if _, err := ResolverConfig(Config{}); err == nil || !strings.Contains(err.Error(), "-forward") {
		t.Errorf("nothing to answer from: %v", err)
	}
	_, err = ResolverConfig(Config{Resolving: config.Resolving{Forward: "corp.example=10.0.0.1:53;bad..name=10.0.0.1"}})
	if err == nil || !strings.HasPrefix(err.Error(), "resolverd: -forward: forward: entry 2") {
		t.Errorf("bad -forward: %v", err)
	}
}
