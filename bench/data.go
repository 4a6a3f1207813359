package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/bench/trace"
	"github.com/shardns/shardns/bench/zonegen"
)

// missTypes are the query types of the cold-cache trace: every name with
// each type once gives eight distinct questions per name.
func missTypes() []uint16 {
	return []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeMX, dns.TypeTXT, dns.TypeNS, dns.TypeSRV, dns.TypeCAA, dns.TypeHTTPS}
}

// workloadFiles are a workload's dnsperf input files.
type workloadFiles struct {
	trace   string   // the measured stream
	warm    string   // every question of trace once (warm-cache workloads)
	lats    []string // cold workloads: the questions of each latency round, disjoint from the rest
	rounds  []string // cold workloads: the questions of each full-load round, disjoint
	queries int      // lines in trace
	unique  int      // distinct questions in trace
}

// dataset is the zone and the traces of a run.
type dataset struct {
	zone      *zonegen.Zone
	zonePath  string
	generated []string // the generated names (the Zipf and uniform traces draw from these)
	nx        []string
	csvRows   int
	csvExtra  int // CSV names outside the suffix, added to the zone
	files     map[string]workloadFiles
	probe     string // a name every server is asked before a run starts
}

// zoneConfig is the zone of a run.
func zoneConfig(o options, extra []string) zonegen.Config {
	return zonegen.Config{
		Names: o.names, CNAMEShare: 0.10, AAAAShare: 0.30, MXShare: 0.05, TXTShare: 0.05,
		Seed: o.seed, Extra: extra,
	}
}

// prepare reads the CSV, generates the zone and writes every trace into dir.
func prepare(o options, csvPath, dir string) (*dataset, error) {
	f, err := os.Open(csvPath)
	if err != nil {
		return nil, fmt.Errorf("bench: -csv: %w (make a sample with: cd bench && go run . -gen-csv %s)", err, csvPath)
	}
	csvQs, err := trace.ReadCSV(f)
	f.Close()
	if err != nil {
		return nil, fmt.Errorf("bench: -csv %s: %w", csvPath, err)
	}
	var extra []string
	for _, q := range csvQs {
		extra = append(extra, q.Name)
	}
	zone, err := zonegen.Generate(zoneConfig(o, extra))
	if err != nil {
		return nil, err
	}
	d := &dataset{
		zone: zone, zonePath: filepath.Join(dir, "root.zone"),
		generated: zone.Owners()[:o.names], nx: zone.NXNames(max(o.names/20, 1)),
		csvRows: len(csvQs), csvExtra: len(zone.Names) - o.names,
		files: map[string]workloadFiles{}, probe: "ns." + zone.Suffix,
	}
	zf, err := os.Create(d.zonePath)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	_, err = zone.WriteTo(zf)
	if cerr := zf.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("bench: zone: %w", err)
	}
	mix := trace.Mix{Names: d.generated, NX: d.nx, NXShare: o.nxShare}
	zipf, err := trace.Generate(mix, trace.ZipfSampler(o.zipfS), o.traceLen, o.seed)
	if err != nil {
		return nil, err
	}
	uniform, err := trace.Generate(mix, trace.UniformSampler, o.traceLen, o.seed+1)
	if err != nil {
		return nil, err
	}
	for name, qs := range map[string][]trace.Query{"zipf": zipf, "uniform": uniform, "csv": csvQs} {
		if d.files[name], err = writeWarm(dir, name, qs); err != nil {
			return nil, err
		}
	}
	// Cold: every question once; each latency round and each full-load
	// round get their own.
	keys := trace.Keys(append(append([]string(nil), zone.Owners()...), d.nx...), missTypes(), o.seed+2)
	nLat := min(int(float64(o.latQPS)*o.latDuration.Seconds()*1.2)+100, len(keys)/(5*o.rounds))
	var miss workloadFiles
	for r := range o.rounds {
		f := filepath.Join(dir, fmt.Sprintf("miss-lat-%d.txt", r))
		if err := writeQueries(f, keys[r*nLat:(r+1)*nLat]); err != nil {
			return nil, err
		}
		miss.lats = append(miss.lats, f)
	}
	rest := keys[o.rounds*nLat:]
	miss.queries, miss.unique = len(rest), len(rest)
	per := len(rest) / o.rounds
	for r := range o.rounds {
		f := filepath.Join(dir, fmt.Sprintf("miss-%d.txt", r))
		if err := writeQueries(f, rest[r*per:(r+1)*per]); err != nil {
			return nil, err
		}
		miss.rounds = append(miss.rounds, f)
	}
	miss.trace = miss.rounds[0]
	d.files["miss"] = miss
	return d, nil
}

// writeWarm writes a trace and its questions once each.
func writeWarm(dir, name string, qs []trace.Query) (workloadFiles, error) {
	uniq := trace.Unique(qs)
	wf := workloadFiles{
		trace: filepath.Join(dir, name+".txt"), warm: filepath.Join(dir, name+"-warm.txt"),
		queries: len(qs), unique: len(uniq),
	}
	if err := writeQueries(wf.trace, qs); err != nil {
		return wf, err
	}
	return wf, writeQueries(wf.warm, uniq)
}

func writeQueries(path string, qs []trace.Query) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: %w", err)
	}
	err = trace.WriteDnsperf(f, qs)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("bench: %w", cerr)
	}
	return err
}

// sampleCSV draws the committed sample CSV: rows sampled by Zipf from the
// first names of the zone (present in every zone of 10000 names or more),
// 5% names that do not exist, and a few names outside the suffix under the
// reserved example domains, which a run adds to its zone.
func sampleCSV(o options, rows int) ([]trace.Query, error) {
	cfg := zoneConfig(o, nil)
	cfg.Names = 10_000
	zone, err := zonegen.Generate(cfg)
	if err != nil {
		return nil, err
	}
	mix := trace.Mix{Names: zone.Owners(), NX: zone.NXNames(500), NXShare: 0.05}
	qs, err := trace.Generate(mix, trace.ZipfSampler(o.zipfS), rows, o.seed+3)
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(o.seed, 4))
	for _, n := range []string{"example.com.", "www.example.com.", "example.net.", "www.example.net.",
		"example.org.", "www.example.org.", "mail.example.org.", "api.example.com.", "cdn.example.net.", "static.example.org."} {
		at := rng.IntN(len(qs))
		qs[at] = trace.Query{Name: n, Type: dns.TypeA}
	}
	return qs, nil
}
