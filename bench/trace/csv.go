package trace

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/miekg/dns"
)

// MaxCSVRows bounds how many rows ReadCSV accepts.
const MaxCSVRows = 10_000_000

// ReadCSV reads a CSV of domain names, one per row, in any of these forms:
//
//	name
//	name,type          e.g. www.example.org,AAAA
//	rank,name          a top-sites list (Tranco, Umbrella)
//	rank,name,type
//
// Type is a mnemonic (A, AAAA, MX) or a number, A when absent. A first row
// that titles a column ("name", "domain", "rank") or does not parse is taken
// as a header and skipped, as are blank rows and rows starting with '#'.
// Names are returned fully qualified and lower case. Any other malformed
// row is an error naming its line.
func ReadCSV(r io.Reader) ([]Query, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	var out []Query
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("trace: csv: %w", err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue
		}
		if len(out) == 0 && isHeader(rec) {
			continue
		}
		q, err := parseRow(rec)
		if err != nil {
			return nil, fmt.Errorf("trace: csv line %d: %w", line, err)
		}
		if len(out) >= MaxCSVRows {
			return nil, fmt.Errorf("trace: csv: more than %d rows", MaxCSVRows)
		}
		out = append(out, q)
	}
	if len(out) == 0 {
		return nil, errors.New("trace: csv: no names")
	}
	return out, nil
}

// isHeader reports whether the first row is a title row: a field naming a
// column ("name", "domain", "rank", ...), or a row that does not parse.
func isHeader(rec []string) bool {
	for _, f := range rec {
		switch strings.ToLower(strings.TrimSpace(f)) {
		case "name", "names", "domain", "domains", "qname", "host", "hostname", "fqdn", "query", "rank":
			return true
		}
	}
	_, err := parseRow(rec)
	return err != nil
}

func parseRow(rec []string) (Query, error) {
	fields := make([]string, 0, 3)
	for _, f := range rec {
		fields = append(fields, strings.TrimSpace(f))
	}
	if len(fields) >= 2 {
		if _, err := strconv.ParseUint(fields[0], 10, 64); err == nil {
			fields = fields[1:] // rank,name[,type]
		}
	}
	if len(fields) > 2 {
		return Query{}, fmt.Errorf("%d fields, want name[,type]", len(rec))
	}
	name := fields[0]
	if name == "" || name == "." {
		return Query{}, errors.New("empty name")
	}
	if !hostChars(name) {
		return Query{}, fmt.Errorf("%q is not a domain name (letters, digits, '-', '_' and dots; IDNs in punycode)", name)
	}
	q := Query{Name: dns.CanonicalName(name), Type: dns.TypeA}
	if _, ok := dns.IsDomainName(q.Name); !ok {
		return Query{}, fmt.Errorf("%q is not a domain name", name)
	}
	if len(fields) == 2 && fields[1] != "" {
		t, err := parseType(fields[1])
		if err != nil {
			return Query{}, err
		}
		q.Type = t
	}
	return q, nil
}

// hostChars reports whether s holds only the characters of host names
// (and '*' and '_', found in real query logs).
func hostChars(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '*'
		if !ok {
			return false
		}
	}
	return true
}

func parseType(s string) (uint16, error) {
	u := strings.ToUpper(s)
	if t, ok := dns.StringToType[u]; ok {
		return t, nil
	}
	if n, err := strconv.ParseUint(strings.TrimPrefix(u, "TYPE"), 10, 16); err == nil && n > 0 {
		return uint16(n), nil
	}
	return 0, fmt.Errorf("unknown type %q", s)
}

// WriteCSV writes qs as "name,type" rows with a header, the form ReadCSV
// reads back.
func WriteCSV(w io.Writer, qs []Query) error {
	cw := csv.NewWriter(w)
	if err := cw.Write([]string{"name", "type"}); err != nil {
		return fmt.Errorf("trace: csv: %w", err)
	}
	for _, q := range qs {
		if err := cw.Write([]string{strings.TrimSuffix(q.Name, "."), typeString(q.Type)}); err != nil {
			return fmt.Errorf("trace: csv: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("trace: csv: %w", err)
	}
	return nil
}
