package trace

import (
	"bytes"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestReadCSVForms(t *testing.T) {
	in := `name,type
www.Example.org,AAAA
example.com
# a comment

"quoted.example.net",mx
api.example.com, TYPE65
cdn.example.com,
`
	qs, err := ReadCSV(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Query{
		{"www.example.org.", dns.TypeAAAA}, {"example.com.", dns.TypeA}, {"quoted.example.net.", dns.TypeMX},
		{"api.example.com.", 65}, {"cdn.example.com.", dns.TypeA},
	}
	if len(qs) != len(want) {
		t.Fatalf("got %v, want %v", qs, want)
	}
	for i := range want {
		if qs[i] != want[i] {
			t.Errorf("row %d: %v, want %v", i, qs[i], want[i])
		}
	}
}

func TestReadCSVRanked(t *testing.T) {
	// A top-sites list: rank,domain, no header.
	qs, err := ReadCSV(strings.NewReader("1,google.com\n2,facebook.com\n3,example.org,AAAA\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) != 3 || qs[0] != (Query{"google.com.", dns.TypeA}) || qs[2] != (Query{"example.org.", dns.TypeAAAA}) {
		t.Errorf("got %v", qs)
	}
	// One column: a header word, then names.
	qs, err = ReadCSV(strings.NewReader("domain\na.example\nb.example\n"))
	if err != nil || len(qs) != 2 || qs[0].Name != "a.example." {
		t.Errorf("header row: %v, %v", qs, err)
	}
}

func TestReadCSVRejects(t *testing.T) {
	for name, in := range map[string]string{
		"empty":        "",
		"header only":  "name,type\n",
		"bad type":     "a.example,A\nb.example,NOTATYPE\n",
		"bad name":     "a.example\nnot a name\n",
		"too many":     "a.example,A\nb.example,A,extra,fields\n",
		"url":          "a.example\nhttp://b.example/\n",
		"empty label":  "a.example\nb..example\n",
		"unterminated": "a.example\n\"b.example\n",
	} {
		if qs, err := ReadCSV(strings.NewReader(in)); err == nil {
			t.Errorf("%s: no error, got %v", name, qs)
		}
	}
	_, err := ReadCSV(strings.NewReader("a.example\nb.example\nbad name here\n"))
	if err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("error %v does not name line 3", err)
	}
}

func TestCSVRoundTrip(t *testing.T) {
	qs := []Query{{"www.example.org.", dns.TypeA}, {"x.example.", dns.TypeTXT}, {"y.example.", dns.TypeAAAA}}
	var b bytes.Buffer
	if err := WriteCSV(&b, qs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(back) != len(qs) {
		t.Fatalf("round trip: %v", back)
	}
	for i := range qs {
		if back[i] != qs[i] {
			t.Errorf("row %d: %v, want %v", i, back[i], qs[i])
		}
	}
}

// FuzzReadCSV: the CSV is outside input; ReadCSV never panics and every
// name it returns is a fully qualified domain name with a type.
func FuzzReadCSV(f *testing.F) {
	for _, s := range []string{"name,type\nwww.example.org,AAAA\n", "1,google.com\n", "a\n\"b\n", "x,TYPE0\n", ",\n,,\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		qs, err := ReadCSV(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, q := range qs {
			if _, ok := dns.IsDomainName(q.Name); !ok || !dns.IsFqdn(q.Name) || q.Type == 0 {
				t.Errorf("from %q: bad query %+v", in, q)
			}
		}
	})
}
