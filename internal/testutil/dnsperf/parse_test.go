package dnsperf

import (
	"strings"
	"testing"
	"time"
)

// fullLoad is dnsperf 2.10's report of a run at full load.
const fullLoad = `DNS Performance Testing Tool
Version 2.10.0

[Status] Command line: dnsperf -s 127.0.0.1 -p 15399 -d q.txt -l 2 -c 2
[Status] Sending queries (to 127.0.0.1:15399)
[Status] Started at: Sun Nov 22 07:54:09 2026
[Status] Stopping after 2.000000 seconds
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         235715
  Queries completed:    235715 (100.00%)
  Queries lost:         0 (0.00%)

  Response codes:       NOERROR 117858 (50.00%), NXDOMAIN 117857 (50.00%)
  Average packet size:  request 32, response 81
  Run time (s):         2.000111
  Queries per second:   117850.959272

  Average Latency (s):  0.000459 (min 0.000011, max 0.002514)
  Latency StdDev (s):   0.000301
`

// verbose is a -v run with one lost query.
const verbose = `DNS Performance Testing Tool
Version 2.10.0

[Status] Sending queries (to 127.0.0.1:15399)
> NOERROR www.bench.test A 0.000176
> NXDOMAIN nope.bench.test A 0.000169
> T www.bench.test A
> SERVFAIL www.bench.test AAAA 0.001500
[Status] Testing complete (time limit)

Statistics:

  Queries sent:         4
  Queries completed:    3 (75.00%)
  Queries lost:         1 (25.00%)

  Response codes:       NOERROR 1 (33.33%), NXDOMAIN 1 (33.33%), SERVFAIL 1 (33.33%)
  Run time (s):         1.000168
  Queries per second:   2.999496
`

// allLost is a run against a port nobody listens on.
const allLost = `Statistics:

  Queries sent:         3
  Queries completed:    0 (0.00%)
  Queries lost:         3 (100.00%)

  Response codes:       
  Average packet size:  request 32, response 0
  Run time (s):         1.000168
  Queries per second:   0.000000

  Average Latency (s):  0.000000 (min 0.000000, max 0.000000)
`

func TestParseFullLoad(t *testing.T) {
	st, err := Parse(fullLoad)
	if err != nil {
		t.Fatal(err)
	}
	if st.Sent != 235715 || st.Completed != 235715 || st.Lost != 0 || st.QPS != 117850.959272 {
		t.Errorf("counts: %+v", st)
	}
	if st.RunTime != 2000111*time.Microsecond || st.AvgLatency != 459*time.Microsecond {
		t.Errorf("times: run %v, avg %v", st.RunTime, st.AvgLatency)
	}
	if st.Rcodes["NOERROR"] != 117858 || st.Rcodes["NXDOMAIN"] != 117857 || len(st.Rcodes) != 2 {
		t.Errorf("rcodes: %v", st.Rcodes)
	}
	if len(st.Latencies) != 0 {
		t.Errorf("latencies without -v: %v", st.Latencies)
	}
}

func TestParseVerbose(t *testing.T) {
	st, err := Parse(verbose)
	if err != nil {
		t.Fatal(err)
	}
	want := []time.Duration{176 * time.Microsecond, 169 * time.Microsecond, 1500 * time.Microsecond}
	if len(st.Latencies) != len(want) {
		t.Fatalf("latencies %v, want %v (the lost query has none)", st.Latencies, want)
	}
	for i := range want {
		if st.Latencies[i] != want[i] {
			t.Errorf("latency %d: %v, want %v", i, st.Latencies[i], want[i])
		}
	}
	if st.Lost != 1 || st.Rcodes["SERVFAIL"] != 1 {
		t.Errorf("%+v", st)
	}
}

func TestParseAllLost(t *testing.T) {
	st, err := Parse(allLost)
	if err != nil {
		t.Fatal(err)
	}
	if st.Completed != 0 || st.Lost != 3 || st.QPS != 0 || len(st.Rcodes) != 0 {
		t.Errorf("%+v", st)
	}
}

func TestParseRejects(t *testing.T) {
	for name, out := range map[string]string{
		"empty":          "",
		"no qps":         "Queries sent: 1\nQueries completed: 1\nQueries lost: 0\n",
		"overflow":       "Queries sent: 99999999999999999999\n",
		"negative":       "Queries sent: -1\nQueries completed: 0\nQueries lost: 0\nQueries per second: 0\n",
		"more completed": "Queries sent: 1\nQueries completed: 2\nQueries lost: 0\nQueries per second: 2\n",
		"bad rcodes":     "Queries sent: 1\nQueries completed: 1\nQueries lost: 0\nQueries per second: 1\nResponse codes: NOERROR\n",
		"nan qps":        "Queries sent: 1\nQueries completed: 1\nQueries lost: 0\nQueries per second: NaN\n",
	} {
		if st, err := Parse(out); err == nil {
			t.Errorf("%s: no error, got %+v", name, st)
		}
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 50 * time.Millisecond}, {99, 99 * time.Millisecond}, {100, 100 * time.Millisecond}, {0.1, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 {
		t.Error("percentile of nothing is not 0")
	}
}

func TestArgs(t *testing.T) {
	r := Run{Bin: "dnsperf", Prefix: []string{"taskset", "-c", "0"}, Server: "127.0.0.1:5353", File: "q.txt",
		Duration: 2500 * time.Millisecond, Once: true, MaxQPS: 1000, Clients: 4, Outstanding: 100, Timeout: time.Second, Verbose: true}
	args, err := r.Args()
	if err != nil {
		t.Fatal(err)
	}
	want := "taskset -c 0 dnsperf -s 127.0.0.1 -p 5353 -d q.txt -l 2.5 -T 1 -n 1 -Q 1000 -c 4 -q 100 -t 1 -v"
	if got := strings.Join(args, " "); got != want {
		t.Errorf("args\n got %s\nwant %s", got, want)
	}
	for _, bad := range []Run{
		{Bin: "dnsperf", Server: "192.0.2.1:53", File: "q", Duration: time.Second},
		{Bin: "dnsperf", Server: "127.0.0.1:53", File: "q"},
		{Bin: "dnsperf", Server: "localhost", File: "q", Duration: time.Second},
	} {
		if _, err := bad.Args(); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}

// FuzzParse: dnsperf's output is outside input; Parse never panics and
// never returns impossible figures without an error.
func FuzzParse(f *testing.F) {
	for _, s := range []string{fullLoad, verbose, allLost, "Queries per second: .\n", "> NOERROR a A 1e400\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, out string) {
		st, err := Parse(out)
		if err != nil {
			return
		}
		if st.Sent < 0 || st.Completed > st.Sent || st.Lost > st.Sent || st.QPS < 0 || st.AvgLatency < 0 {
			t.Errorf("impossible figures from %q: %+v", out, st)
		}
		for _, d := range st.Latencies {
			if d < 0 {
				t.Errorf("negative latency from %q", out)
			}
		}
	})
}
