package fakenet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// keyFile is one DNSSEC key as ldns-keygen wrote it: the base name
// (K<zone>+<alg>+<id>) and the text of its .key and .private files.
type keyFile struct {
	base    string
	public  string
	private string
	dnskey  *dns.DNSKEY
}

// keyPair is a zone's key signing key and zone signing key, and for a
// zone whose parent names a key the zone does not publish, that key.
type keyPair struct{ ksk, zsk, unpublished keyFile }

// keyStore generates the zones' keys once per process: key generation is
// the slow part of building the fake Internet (RSA, and ldns-keygen reading
// the system's entropy), and keys do not depend on the addresses a Start
// picks, so every Start of the process signs with the same keys.
type keyStore struct {
	once sync.Once
	keys map[string]keyPair // zone origin → keys
	err  error
}

// processKeys is the process's key store. It is package state because the
// Starts that share it (the tests of one package) know nothing of each
// other.
var processKeys keyStore

// get returns the keys of every signed zone of specs, generating them on
// the first call.
func (s *keyStore) get(specs []zoneSpec) (map[string]keyPair, error) {
	s.once.Do(func() { s.keys, s.err = generateKeys(specs) })
	if s.err != nil {
		return nil, s.err
	}
	for _, z := range specs {
		if _, ok := s.keys[z.origin]; z.alg != 0 && !ok {
			return nil, fmt.Errorf("fakenet: no key generated for %s", z.origin)
		}
	}
	return s.keys, nil
}

// keyRole is which key of a zone's keyPair one ldns-keygen run makes.
type keyRole int

const (
	roleKSK keyRole = iota
	roleZSK
	roleUnpublished
)

// generateKeys runs ldns-keygen for a KSK and a ZSK of every signed zone
// of specs (and the unpublished KSK of those with dsUnpublished), in
// parallel, in a temporary folder it removes when done.
func generateKeys(specs []zoneSpec) (map[string]keyPair, error) {
	if _, err := exec.LookPath("ldns-keygen"); err != nil {
		return nil, fmt.Errorf("fakenet: ldns-keygen not found (apt-get install ldnsutils): %w", err)
	}
	dir, err := os.MkdirTemp("", "fakenet-keys-")
	if err != nil {
		return nil, fmt.Errorf("fakenet: key folder: %w", err)
	}
	defer os.RemoveAll(dir)
	type result struct {
		origin string
		role   keyRole
		key    keyFile
		err    error
	}
	results := make(chan result)
	n := 0
	for _, z := range specs {
		if z.alg == 0 {
			continue
		}
		roles := []keyRole{roleKSK, roleZSK}
		if z.dsUnpublished {
			roles = append(roles, roleUnpublished)
		}
		for _, role := range roles {
			n++
			go func() {
				k, err := keygen(dir, z.origin, z.alg, role != roleZSK)
				results <- result{z.origin, role, k, err}
			}()
		}
	}
	keys := map[string]keyPair{}
	var firstErr error
	for range n {
		r := <-results
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		kp := keys[r.origin]
		switch r.role {
		case roleKSK:
			kp.ksk = r.key
		case roleZSK:
			kp.zsk = r.key
		case roleUnpublished:
			kp.unpublished = r.key
		}
		keys[r.origin] = kp
	}
	if firstErr != nil {
		return nil, firstErr
	}
	return keys, nil
}

// keygen makes one key for origin with ldns-keygen in dir.
func keygen(dir, origin string, alg uint8, ksk bool) (keyFile, error) {
	args := []string{"-a", dns.AlgorithmToString[alg]}
	if alg == dns.RSASHA256 {
		args = append(args, "-b", "2048")
	}
	if ksk {
		args = append(args, "-k")
	}
	args = append(args, origin)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ldns-keygen", args...)
	cmd.Dir = dir
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return keyFile{}, fmt.Errorf("fakenet: ldns-keygen %s: %w: %s", strings.Join(args, " "), err, errOut.String())
	}
	base := strings.TrimSpace(out.String())
	pub, err := os.ReadFile(filepath.Join(dir, base+".key"))
	if err != nil {
		return keyFile{}, fmt.Errorf("fakenet: ldns-keygen %s: %w", origin, err)
	}
	priv, err := os.ReadFile(filepath.Join(dir, base+".private"))
	if err != nil {
		return keyFile{}, fmt.Errorf("fakenet: ldns-keygen %s: %w", origin, err)
	}
	rr, err := dns.NewRR(string(pub))
	if err != nil {
		return keyFile{}, fmt.Errorf("fakenet: ldns-keygen %s: parse %s.key: %w", origin, base, err)
	}
	key, ok := rr.(*dns.DNSKEY)
	if !ok {
		return keyFile{}, fmt.Errorf("fakenet: ldns-keygen %s: %s.key holds %T, not a DNSKEY", origin, base, rr)
	}
	return keyFile{base: base, public: string(pub), private: string(priv), dnskey: key}, nil
}

// signOptions are the ldns-signzone settings of one zone.
type signOptions struct {
	nsec3      bool
	inception  time.Time
	expiration time.Time
}

// sign writes text and the zone's keys into dir and signs the zone with
// ldns-signzone, returning the signed zone's text.
func sign(ctx context.Context, dir, origin, text string, kp keyPair, o signOptions) (string, error) {
	name := strings.TrimSuffix(origin, ".")
	if name == "" {
		name = "root"
	}
	unsigned := filepath.Join(dir, name+".zone")
	if err := os.WriteFile(unsigned, []byte(text), 0o644); err != nil {
		return "", fmt.Errorf("fakenet: sign %s: %w", origin, err)
	}
	var bases []string
	for _, k := range []keyFile{kp.ksk, kp.zsk} {
		if err := os.WriteFile(filepath.Join(dir, k.base+".key"), []byte(k.public), 0o644); err != nil {
			return "", fmt.Errorf("fakenet: sign %s: %w", origin, err)
		}
		if err := os.WriteFile(filepath.Join(dir, k.base+".private"), []byte(k.private), 0o600); err != nil {
			return "", fmt.Errorf("fakenet: sign %s: %w", origin, err)
		}
		bases = append(bases, filepath.Join(dir, k.base))
	}
	signed := unsigned + ".signed"
	args := []string{
		"-o", origin, "-f", signed,
		"-i", o.inception.UTC().Format("20060102150405"),
		"-e", o.expiration.UTC().Format("20060102150405"),
	}
	if o.nsec3 {
		// RFC 9276: no extra iterations, no salt.
		args = append(args, "-n", "-a", "1", "-t", "0")
	}
	args = append(args, unsigned)
	args = append(args, bases...)
	cmd := exec.CommandContext(ctx, "ldns-signzone", args...)
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("fakenet: ldns-signzone %s: %w: %s", origin, err, errOut.String())
	}
	out, err := os.ReadFile(signed)
	if err != nil {
		return "", fmt.Errorf("fakenet: sign %s: %w", origin, err)
	}
	return string(out), nil
}
