// Package dnsperf runs dnsperf and reads its report: the summary of a run
// (queries sent, completed, lost, queries per second, response codes,
// average latency) and, with -v, each query's latency, from which it takes
// percentiles.
package dnsperf

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Stats is one dnsperf run.
type Stats struct {
	Sent, Completed, Lost int64
	QPS                   float64          // completed queries per second of run time
	RunTime               time.Duration    // from the first query sent to the end
	AvgLatency            time.Duration    // over completed queries
	Rcodes                map[string]int64 // response codes of completed queries
	Latencies             []time.Duration  // per completed query; only with -v
}

// maxSeconds bounds a duration in dnsperf's report: runs and timeouts are
// far shorter than a day.
const maxSeconds = 86400.0

// Parse reads dnsperf's standard output. It needs the lines "Queries sent",
// "Queries completed", "Queries lost" and "Queries per second"; the rest is
// read when present. Per-query lines of -v ("> NOERROR name A 0.000151")
// fill Latencies; lost queries ("> T name A") do not.
func Parse(out string) (Stats, error) {
	var st Stats
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "> ") {
			if d, ok := verboseLatency(line); ok {
				st.Latencies = append(st.Latencies, d)
			}
			continue
		}
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Queries sent":
			st.Sent, err = firstInt(val)
		case "Queries completed":
			st.Completed, err = firstInt(val)
		case "Queries lost":
			st.Lost, err = firstInt(val)
		case "Queries per second":
			st.QPS, err = firstFloat(val)
		case "Run time (s)":
			st.RunTime, err = seconds(val)
		case "Average Latency (s)":
			st.AvgLatency, err = seconds(val)
		case "Response codes":
			st.Rcodes, err = rcodes(val)
		default:
			continue
		}
		if err != nil {
			return Stats{}, fmt.Errorf("dnsperf: %s: %w", key, err)
		}
		seen[key] = true
	}
	if err := sc.Err(); err != nil {
		return Stats{}, fmt.Errorf("dnsperf: read: %w", err)
	}
	for _, k := range []string{"Queries sent", "Queries completed", "Queries lost", "Queries per second"} {
		if !seen[k] {
			return Stats{}, fmt.Errorf("dnsperf: no %q in dnsperf output", k)
		}
	}
	if st.Completed > st.Sent || st.Lost > st.Sent {
		return Stats{}, fmt.Errorf("dnsperf: %d completed and %d lost of %d sent", st.Completed, st.Lost, st.Sent)
	}
	return st, nil
}

// verboseLatency reads "> RCODE name type seconds".
func verboseLatency(line string) (time.Duration, bool) {
	f := strings.Fields(line)
	if len(f) != 5 || f[1] == "T" {
		return 0, false
	}
	d, err := seconds(f[4])
	return d, err == nil
}

func firstInt(s string) (int64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("no value")
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("bad count %q", f[0])
	}
	return n, nil
}

func firstFloat(s string) (float64, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return 0, errors.New("no value")
	}
	x, err := strconv.ParseFloat(f[0], 64)
	if err != nil || x < 0 || math.IsInf(x, 0) || math.IsNaN(x) {
		return 0, fmt.Errorf("bad number %q", f[0])
	}
	return x, nil
}

func seconds(s string) (time.Duration, error) {
	x, err := firstFloat(s)
	if err != nil {
		return 0, err
	}
	if x > maxSeconds {
		return 0, fmt.Errorf("%v s out of range", x)
	}
	return time.Duration(x * float64(time.Second)), nil
}

// rcodes reads "NOERROR 96 (100.00%), NXDOMAIN 4 (4.00%)".
func rcodes(s string) (map[string]int64, error) {
	out := map[string]int64{}
	if s == "" {
		return out, nil // no query completed
	}
	for part := range strings.SplitSeq(s, ",") {
		f := strings.Fields(part)
		if len(f) < 2 {
			return nil, fmt.Errorf("bad response code %q", part)
		}
		n, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("bad response code count %q", part)
		}
		out[f[0]] += n
	}
	return out, nil
}

// Percentile returns the p-th percentile (0 < p ≤ 100) of ds by the
// nearest-rank method, or 0 for none. ds is sorted in place.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 || !(p > 0) {
		return 0
	}
	slices.Sort(ds)
	rank := int(math.Ceil(p / 100 * float64(len(ds))))
	rank = min(max(rank, 1), len(ds))
	return ds[rank-1]
}
