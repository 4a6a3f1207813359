package app

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/shardns/shardns/internal/config"
	"github.com/shardns/shardns/resolverd/forward"
)

// TestInProcessConfigForward checks where the in-process resolver's
// default group comes from: -upstream, else a "." group in -forward
// (resolv.conf then unread), else resolv.conf; and that a bad -forward is
// an error naming the flag.
func TestInProcessConfigForward(t *testing.T) {
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 192.0.2.53\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	corp := forward.Route{Zone: "corp.example.", Upstreams: []string{"10.0.0.1:53"}}
	listen := []string{"127.0.0.1:5353"}
	for name, tc := range map[string]struct {
		upstream, forward string
		wantUps           []string
		wantRoutes        []forward.Route
	}{
		"resolv.conf is the default": {"", "corp.example=10.0.0.1:53", []string{"192.0.2.53:53"}, []forward.Route{corp}},
		"-upstream is the default":   {"192.0.2.1:53", "corp.example=10.0.0.1:53", []string{"192.0.2.1:53"}, []forward.Route{corp}},
		"a . group is the default": {"", "corp.example=10.0.0.1:53;.=192.0.2.2", nil,
			[]forward.Route{corp, {Zone: ".", Upstreams: []string{"192.0.2.2"}}}},
	} {
		cfg := Config{ResolvConf: resolv, Resolving: config.Resolving{Upstream: tc.upstream, Forward: tc.forward}}
		got, err := InProcessConfig(cfg, listen)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got.Upstreams, tc.wantUps) || !reflect.DeepEqual(got.Forward, tc.wantRoutes) {
			t.Errorf("%s: upstreams %v forward %+v, want %v %+v", name, got.Upstreams, got.Forward, tc.wantUps, tc.wantRoutes)
		}
	}
	_, err := InProcessConfig(Config{ResolvConf: resolv, Resolving: config.Resolving{Forward: "corp.example"}}, listen)
	if err == nil || !strings.HasPrefix(err.Error(), "dnsd: -forward: ") || !strings.Contains(err.Error(), "no '='") {
		t.Errorf("bad -forward: %v", err)
	}
}
