package api

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/queue"
)

// jobRequest is the JSON body of POST /jobs: names (each of the default
// type) and/or items (each with its own type).
type jobRequest struct {
	Names []string     `json:"names"`
	Type  string       `json:"type"`
	Items []queue.Item `json:"items"`
}

// maxBadRows is how many bad rows an error names.
const maxBadRows = 5

// itemErrors collects the rows that could not be read.
type itemErrors struct {
	n    int
	msgs []string
}

func (e *itemErrors) add(row int, msg string) {
	e.n++
	if len(e.msgs) < maxBadRows {
		e.msgs = append(e.msgs, fmt.Sprintf("row %d: %s", row, msg))
	}
}

func (e *itemErrors) err() error {
	if e.n == 0 {
		return nil
	}
	more := ""
	if e.n > len(e.msgs) {
		more = fmt.Sprintf(" (and %d more)", e.n-len(e.msgs))
	}
	return fmt.Errorf("%d bad rows: %s%s", e.n, strings.Join(e.msgs, "; "), more)
}

// item checks one name and type; the message is for the client.
func item(name, typ string) (queue.Item, string) {
	n, err := dnsmsg.ParseName(strings.TrimSpace(name))
	if err != nil {
		return queue.Item{}, err.Error()
	}
	t, ok := dnsmsg.ParseType(strings.TrimSpace(typ))
	if !ok {
		return queue.Item{}, fmt.Sprintf("bad type %q", typ)
	}
	return queue.Item{Name: n, Type: dnsmsg.TypeString(t)}, ""
}

// parseJobJSON reads a POST /jobs JSON body.
func parseJobJSON(r io.Reader) ([]queue.Item, error) {
	var req jobRequest
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return nil, fmt.Errorf("bad JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("bad JSON: more than one value")
	}
	var bad itemErrors
	out := make([]queue.Item, 0, len(req.Names)+len(req.Items))
	for i, n := range req.Names {
		it, msg := item(n, req.Type)
		if msg != "" {
			bad.add(i+1, msg)
			continue
		}
		out = append(out, it)
	}
	for i, it := range req.Items {
		typ := it.Type
		if typ == "" {
			typ = req.Type
		}
		v, msg := item(it.Name, typ)
		if msg != "" {
			bad.add(len(req.Names)+i+1, msg)
			continue
		}
		out = append(out, v)
	}
	return checkItems(out, bad.err())
}

func checkItems(out []queue.Item, err error) ([]queue.Item, error) {
	switch {
	case err != nil:
		return nil, err
	case len(out) == 0:
		return nil, errors.New("no names")
	case len(out) > queue.MaxJobItems:
		return nil, fmt.Errorf("%d names, at most %d", len(out), queue.MaxJobItems)
	}
	return out, nil
}

// Header names of the name and type columns of a CSV upload.
var (
	nameColumns = map[string]bool{"name": true, "domain": true, "qname": true, "host": true, "hostname": true}
	typeColumns = map[string]bool{"type": true, "qtype": true, "rrtype": true}
)

// parseJobCSV reads a CSV of domain names: one name per row, optionally
// with a type column, optionally under a header naming the columns
// (name/domain, type). Without a header, a first column of numbers is
// taken for a rank (as in top-sites lists: "1,example.com") and the name
// is the second; otherwise the name is the first column and the type, if
// any, the second. Empty rows and rows starting with # are skipped.
func parseJobCSV(r io.Reader, defaultType string) ([]queue.Item, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.TrimLeadingSpace = true
	cr.ReuseRecord = true
	nameCol, typeCol := -1, -1
	var bad itemErrors
	var out []queue.Item
	for row := 1; ; row++ {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("bad CSV: %w", err)
		}
		if len(rec) == 0 || (len(rec) == 1 && strings.TrimSpace(rec[0]) == "") {
			continue
		}
		if nameCol < 0 {
			nameCol, typeCol = columns(rec)
			if nameCol < 0 { // a header row
				nameCol, typeCol = headerColumns(rec)
				if nameCol < 0 {
					return nil, errors.New("bad CSV: the header names no name or domain column")
				}
				continue
			}
		}
		if nameCol >= len(rec) {
			bad.add(row, "no name column")
			continue
		}
		typ := defaultType
		if typeCol >= 0 && typeCol < len(rec) && strings.TrimSpace(rec[typeCol]) != "" {
			typ = rec[typeCol]
		}
		it, msg := item(rec[nameCol], typ)
		if msg != "" {
			bad.add(row, msg)
			continue
		}
		out = append(out, it)
		if len(out) > queue.MaxJobItems {
			break
		}
	}
	return checkItems(out, bad.err())
}

// columns guesses the name and type columns from the first row; -1 when
// the row is a header.
func columns(rec []string) (name, typ int) {
	if hn, _ := headerColumns(rec); hn >= 0 {
		return -1, -1
	}
	if _, err := strconv.ParseUint(strings.TrimSpace(rec[0]), 10, 64); err == nil && len(rec) > 1 {
		if len(rec) > 2 {
			return 1, 2
		}
		return 1, -1
	}
	return 0, 1
}

func headerColumns(rec []string) (name, typ int) {
	name, typ = -1, -1
	for i, h := range rec {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case nameColumns[h] && name < 0:
			name = i
		case typeColumns[h] && typ < 0:
			typ = i
		}
	}
	return name, typ
}
