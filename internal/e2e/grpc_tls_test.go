package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shardns/shardns/internal/testutil/nsdtest"
	"github.com/shardns/shardns/internal/testutil/testcerts"
)

// tlsFleet is nsd behind a resolverd serving gRPC over mutual TLS, with
// the fleet's CA and certificates, and one from a CA the fleet does not
// trust.
type tlsFleet struct {
	ca, other *testcerts.CA
	client    testcerts.Pair // signed by ca
	foreign   testcerts.Pair // signed by other
	resolver  *proc
	grpc      string
}

func startTLSFleet(t *testing.T) *tlsFleet {
	t.Helper()
	f := &tlsFleet{ca: testcerts.NewCA(t, "fleet CA"), other: testcerts.NewCA(t, "other CA")}
	server := f.ca.Server(t, "resolverd", "127.0.0.1")
	f.client = f.ca.Client(t, "dnsd", "dnsd")
	f.foreign = f.other.Client(t, "intruder", "dnsd")
	nsd := nsdtest.Start(t, map[string]string{zoneName: testZone()})
	f.grpc = port(t)
	// The certificate and key through the environment, as compose and
	// systemd pass them; the client CA as a flag.
	f.resolver = start(t, "resolverd", []string{"SHARDNS_TLS_CERT=" + server.Cert, "SHARDNS_TLS_KEY=" + server.Key},
		"-listen", f.grpc, "-upstream", nsd.Addr, "-tls-client-ca", f.ca.File)
	waitTCP(t, f.resolver, f.grpc)
	return f
}

// dnsd starts a dnsd (no L1, so every query is a miss) that asks the
// fleet's resolverd with args, and waits until it takes TCP connections.
func (f *tlsFleet) dnsd(t *testing.T, args ...string) (*proc, string) {
	t.Helper()
	addr := port(t)
	d := start(t, "dnsd", nil, append([]string{"-listen", addr, "-resolver", f.grpc, "-l1", "0"}, args...)...)
	waitTCP(t, d, addr)
	return d, addr
}

// TestResolverdMutualTLS runs resolverd with -tls-cert, -tls-key and
// -tls-client-ca in front of nsd, and dnsd and cacheapi with
// -resolver-ca, -resolver-cert and -resolver-key: dig and curl get the
// answers. dnsd with a certificate from another CA, with none, or in
// plaintext gets SERVFAIL for a miss, and its log says why.
func TestResolverdMutualTLS(t *testing.T) {
	f := startTLSFleet(t)
	good := []string{"-resolver-ca", f.ca.File, "-resolver-cert", f.client.Cert, "-resolver-key", f.client.Key}

	d, addr := f.dnsd(t, good...)
	waitDNS(t, d, addr, zoneName)
	for range 2 { // the second through the same connection
		if got := dig(t, addr, "www.shardns.test", "A"); got.Status != "NOERROR" || !slices.Equal(rdata(got.Answer), []string{"192.0.2.10"}) {
			t.Errorf("dig through mutual TLS: %s %v\n%s", got.Status, got.Answer, got.Raw)
		}
	}
	if got := dig(t, addr, "shardns.test", "MX"); got.Status != "NOERROR" || len(got.Answer) != 1 {
		t.Errorf("dig MX through mutual TLS: %s %v", got.Status, got.Answer)
	}
	rlog := f.resolver.Out.String()
	if !strings.Contains(rlog, "tls=mutual") || strings.Contains(rlog, "level=WARN") {
		t.Errorf("resolverd's start log: want tls=mutual and no warning:\n%s", rlog)
	}
	if strings.Contains(d.Out.String(), "level=WARN") {
		t.Errorf("dnsd with a good certificate warned:\n%s", d.Out.String())
	}

	// cacheapi's flags are the same (package frontend).
	httpAddr := port(t)
	api := start(t, "cacheapi", nil, append([]string{"-listen", httpAddr, "-resolver", f.grpc}, good...)...)
	waitTCP(t, api, httpAddr)
	if body := curl(t, "http://"+httpAddr+"/lookup?name=www.shardns.test&type=A"); !strings.Contains(body, "192.0.2.10") {
		t.Errorf("cacheapi /lookup through mutual TLS: %s", body)
	}

	for _, tc := range []struct {
		name string
		args []string
		why  string // in dnsd's log
	}{
		{"a client certificate from another CA", []string{"-resolver-ca", f.ca.File, "-resolver-cert", f.foreign.Cert, "-resolver-key", f.foreign.Key}, "unknown certificate authority"},
		{"no client certificate", []string{"-resolver-ca", f.ca.File}, "certificate required"},
		{"plaintext", nil, "error reading server preface"},
		{"a resolverd it does not trust", []string{"-resolver-ca", f.other.File, "-resolver-cert", f.client.Cert, "-resolver-key", f.client.Key}, "certificate signed by unknown authority"},
	} {
		d, addr := f.dnsd(t, tc.args...)
		if got := dig(t, addr, "www.shardns.test", "A"); got.Status != "SERVFAIL" || len(got.Answer) != 0 {
			t.Errorf("%s: dig got %s %v; want SERVFAIL\n%s", tc.name, got.Status, got.Answer, got.Raw)
		}
		waitLog(t, d, "resolverd unavailable", tc.why)
		d.Stop(t)
	}
	// resolverd says whom it refused and why (one warning per 10 s: the
	// first refusal, the foreign certificate).
	waitLog(t, f.resolver, "refused a gRPC client's TLS handshake", "client=127.0.0.1:", "certificate signed by unknown authority")
	// The refusals did not hurt the good client.
	if got := dig(t, addr, "txt.shardns.test", "TXT"); got.Status != "NOERROR" || len(got.Answer) != 1 {
		t.Errorf("good client after the refusals: %s %v", got.Status, got.Answer)
	}
}

// waitLog waits up to 15 s for a log line of p holding every one of words.
func waitLog(t *testing.T, p *proc, words ...string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, line := range strings.Split(p.Out.String(), "\n") {
			if !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("%s: no log line says %q:\n%s", p.Name, words, p.Out.String())
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLSFlagErrorsStopTheStart runs the binaries with bad TLS flags: each
// exits at once with an error naming the flag.
func TestTLSFlagErrorsStopTheStart(t *testing.T) {
	ca := testcerts.NewCA(t, "CA")
	pair := ca.Server(t, "resolverd", "127.0.0.1")
	stranger := testcerts.NewCA(t, "other CA").Client(t, "stranger", "dnsd")
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		bin  string
		args []string
		want string
	}{
		{"resolverd", []string{"-zones", t.TempDir(), "-tls-client-ca", ca.File}, "-tls-client-ca needs -tls-cert and -tls-key"},
		{"resolverd", []string{"-zones", t.TempDir(), "-tls-cert", missing, "-tls-key", pair.Key}, "-tls-cert: open " + missing},
		{"resolverd", []string{"-zones", t.TempDir(), "-tls-cert", pair.Cert, "-tls-key", stranger.Key}, "private key does not match public key"},
		{"dnsd", []string{"-resolver", port(t), "-resolver-ca", missing}, "-resolver-ca: open " + missing},
		{"dnsd", []string{"-resolver", port(t), "-resolver-cert", stranger.Cert}, "-resolver-cert needs -resolver-key"},
		{"cacheapi", []string{"-resolver", port(t), "-resolver-cert", stranger.Cert, "-resolver-key", pair.Key}, "-resolver-key " + pair.Key + " with -resolver-cert"},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append([]string{"-listen", port(t)}, tc.args...)
		out, err := exec.CommandContext(ctx, filepath.Join(binDir, tc.bin), args...).CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		if err == nil || timedOut || !strings.Contains(string(out), tc.want) {
			t.Errorf("%s %v: %v; want a failed start saying %q:\n%s", tc.bin, args, err, tc.want, out)
		}
	}
}

// TestResolverdListenAndPlaintextWarnings runs resolverd and dnsd in a
// network namespace of their own, where an address other than loopback
// (198.51.100.53, on the namespace's lo) reaches nothing outside: resolverd
// listens on loopback by default; plaintext gRPC on a wildcard or other
// address is served with a warning at start, and so is a dnsd dialing one;
// over TLS neither warns.
func TestResolverdListenAndPlaintextWarnings(t *testing.T) {
	ns := netnsCreate(t)
	zones := t.TempDir()
	if err := os.WriteFile(filepath.Join(zones, "shardns.test.zone"), []byte(testZone()), 0o644); err != nil {
		t.Fatal(err)
	}
	ca := testcerts.NewCA(t, "fleet CA")
	server := ca.Server(t, "resolverd", "198.51.100.53")
	const plaintextWarning = "gRPC is served in plaintext on a non-loopback address"

	for _, tc := range []struct {
		args   []string
		listen string // as the start log says
		tls    string
		warn   bool
	}{
		{nil, "127.0.0.1:50051", "off", false},
		{[]string{"-listen", ":50052"}, "[::]:50052", "off", true},
		{[]string{"-listen", "198.51.100.53:50053"}, "198.51.100.53:50053", "off", true},
		{[]string{"-listen", "198.51.100.53:50054", "-tls-cert", server.Cert, "-tls-key", server.Key}, "198.51.100.53:50054", "on", false},
	} {
		r := netnsStart(t, ns, "resolverd", append([]string{"-zones", zones}, tc.args...)...)
		waitLog(t, r, `msg="resolverd ready"`, "listen="+tc.listen, "tls="+tc.tls)
		if got := strings.Contains(r.Out.String(), plaintextWarning); got != tc.warn || strings.Contains(r.Out.String(), "level=WARN") != tc.warn {
			t.Errorf("resolverd %v: warned %v, want %v:\n%s", tc.args, got, tc.warn, r.Out.String())
		}
	}

	// dnsd in front of the plaintext one on 198.51.100.53 warns, and in
	// front of the TLS one does not; both answer.
	const dnsWarning = "resolver connections are plaintext to a non-loopback address"
	for i, tc := range []struct {
		args []string
		warn bool
	}{
		{[]string{"-resolver", "198.51.100.53:50053"}, true},
		{[]string{"-resolver", "198.51.100.53:50054", "-resolver-ca", ca.File}, false},
	} {
		listen := fmt.Sprintf("127.0.0.1:%d", 5300+i)
		d := netnsStart(t, ns, "dnsd", append([]string{"-listen", listen, "-l1", "0"}, tc.args...)...)
		waitLog(t, d, `msg="dnsd ready"`)
		_, p, _ := net.SplitHostPort(listen)
		out, code := ns.exec(t, 15*time.Second, ns.dig, "@127.0.0.1", "-p", p, "+short", "+time=5", "+tries=1", "www.shardns.test", "A")
		if code != 0 || strings.TrimSpace(out) != "192.0.2.10" {
			t.Errorf("dnsd %v: dig printed %q (exit %d); want 192.0.2.10\n%s", tc.args, out, code, d.Out.String())
		}
		if got := strings.Contains(d.Out.String(), dnsWarning); got != tc.warn {
			t.Errorf("dnsd %v: warned %v, want %v:\n%s", tc.args, got, tc.warn, d.Out.String())
		}
	}
}
