package e2e

import "testing"

// perfSample is dnsperf 2.10's report of a short run.
const perfSample = `DNS Performance Testing Tool
Version 2.10.0

[Status] Testing complete (time limit)

Statistics:

  Queries sent:         100
  Queries completed:    96 (96.00%)
  Queries lost:         4 (4.00%)

  Response codes:       NOERROR 96 (100.00%)
  Average packet size:  request 40, response 90
  Run time (s):         1.000225
  Queries per second:   95.978400

  Average Latency (s):  0.000151 (min 0.000056, max 0.000756)
`

func TestParsePerf(t *testing.T) {
	got, err := parsePerf(perfSample)
	if err != nil || got != (perfStats{Sent: 100, Completed: 96, Lost: 4, QPS: 95.9784}) {
		t.Errorf("parsePerf: %+v, %v", got, err)
	}
	for _, bad := range []string{"", "Queries sent: 1\nQueries completed: 1\nQueries lost: 0\n", "Queries sent: 99999999999999999999\n"} {
		if _, err := parsePerf(bad); err == nil {
			t.Errorf("parsePerf(%q): no error", bad)
		}
	}
}

// FuzzParsePerf: dnsperf's output is outside input; parsing it never
// panics and never returns figures with an error.
func FuzzParsePerf(f *testing.F) {
	f.Add(perfSample)
	f.Add("Queries sent: 1\nQueries completed: 1\nQueries lost: 0\nQueries per second: 1.5\n")
	f.Add("Queries per second: .\n")
	f.Fuzz(func(t *testing.T, out string) {
		st, err := parsePerf(out)
		if err == nil && (st.Sent < 0 || st.Completed < 0 || st.Lost < 0 || st.QPS < 0) {
			t.Errorf("negative figures from %q: %+v", out, st)
		}
	})
}
