package nsdconf

import (
	"strings"
	"testing"
)

func TestConfig(t *testing.T) {
	conf := Config(5300, "/tmp/x", Zone{Name: ".", File: "/tmp/x/root.zone"}, Zone{Name: "example.test.", File: "example.test.zone"})
	for _, want := range []string{
		"ip-address: 127.0.0.1@5300", "port: 5300", "do-ip6: no", `zonesdir: "/tmp/x"`,
		`logfile: "/tmp/x/nsd.log"`, "server-count: 1", "rrl-ratelimit: 0", "control-enable: no",
		"zone:\n  name: \".\"\n  zonefile: \"/tmp/x/root.zone\"\n",
		"zone:\n  name: \"example.test.\"\n  zonefile: \"example.test.zone\"\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nsd.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "0.0.0.0") || strings.Contains(conf, "::") {
		t.Errorf("nsd.conf listens beyond loopback:\n%s", conf)
	}
}

func TestServerConfig(t *testing.T) {
	conf := Server{Addr: "127.9.8.7", Port: 53, Dir: "/tmp/y", Control: "/tmp/y/ctl.sock"}.Config(Zone{Name: "fake.", File: "fake.zone"})
	for _, want := range []string{
		"ip-address: 127.9.8.7@53", "port: 53", "control-enable: yes", `control-interface: "/tmp/y/ctl.sock"`,
		"zone:\n  name: \"fake.\"\n  zonefile: \"fake.zone\"\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("nsd.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "127.0.0.1") || strings.Contains(conf, "control-enable: no") {
		t.Errorf("nsd.conf ignores the server's address or control socket:\n%s", conf)
	}
}
