package zones

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/miekg/dns"
)

// maxRecords bounds the records of one zone file (with its includes and
// $GENERATE expansions).
const maxRecords = 1 << 20

// Load parses the zone files in dir: every regular file whose name ends in
// ".zone" or ".db" and does not start with a dot. Other files and
// subdirectories are skipped (they may still be the target of $INCLUDE).
// Symbolic links are followed only while they stay inside dir.
//
// A file's default origin is its name without the extension, e.g.
// "example.com.zone" starts with origin "example.com."; $ORIGIN, $TTL and
// $GENERATE work as usual. $INCLUDE may name only files inside dir (paths
// are taken relative to dir, and links out of dir are refused).
//
// Each file holds one zone: exactly one SOA record, whose owner is the zone
// apex, and only records at or below the apex. A name with a CNAME may hold
// no other data (DNSSEC records aside). Duplicate records are dropped. Two
// files for the same apex are an error. Errors are *Error values, formatted
// "zones: file:line: problem".
func Load(dir string) (*Authority, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	defer root.Close()
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	a := &Authority{zones: map[string]*zone{}}
	for _, e := range entries {
		name := e.Name()
		stem, ok := zoneStem(name)
		if !ok {
			continue
		}
		st, err := root.Stat(name) // follows links, inside dir only
		if err != nil {
			return nil, &Error{File: filepath.Join(dir, name), Err: err}
		}
		if !st.Mode().IsRegular() {
			continue
		}
		z, err := loadFile(root.FS(), dir, name, stem)
		if err != nil {
			return nil, err
		}
		if prev := a.zones[z.origin]; prev != nil {
			return nil, &Error{File: z.file, Line: 1, Err: fmt.Errorf("zone %s is also loaded from %s", z.apex, prev.file)}
		}
		a.zones[z.origin] = z
	}
	return a, nil
}

// zoneStem returns the default origin of a zone file name, and whether the
// name is one Load reads.
func zoneStem(name string) (string, bool) {
	if strings.HasPrefix(name, ".") {
		return "", false
	}
	for _, ext := range []string{".zone", ".db"} {
		if stem, ok := strings.CutSuffix(name, ext); ok && stem != "" {
			return stem, true
		}
	}
	return "", false
}

// loadFile parses one zone file of fsys (dir's contents).
func loadFile(fsys fs.FS, dir, name, stem string) (*zone, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, fmt.Errorf("zones: %w", err)
	}
	defer f.Close()
	tr := &tracker{}
	tfs := trackingFS{fsys: fsys, t: tr}
	zp := dns.NewZoneParser(tr.wrap(f, name), stem, name)
	zp.SetIncludeAllowed(true)
	zp.SetIncludeFS(tfs)

	var recs []record
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		if len(recs) >= maxRecords {
			return nil, &Error{File: filepath.Join(dir, tr.file), Line: tr.line, Err: fmt.Errorf("more than %d records", maxRecords)}
		}
		recs = append(recs, record{rr: rr, file: tr.file, line: tr.line})
	}
	if err := zp.Err(); err != nil {
		e := parserError(err, tr.file, tr.line)
		e.File = filepath.Join(dir, e.File)
		return nil, e
	}
	return build(recs, dir, name)
}

// record is a parsed RR and where it was read.
type record struct {
	rr   dns.RR
	file string
	line int
}

// tracker knows which file the parser read last, and at which line.
type tracker struct {
	file string
	line int
}

// wrap returns a reader for file name whose reads move t.
func (t *tracker) wrap(r io.Reader, name string) *lineReader {
	return &lineReader{br: bufio.NewReader(r), t: t, name: name, line: 1}
}

// lineReader counts lines as the parser consumes bytes. The parser reads
// through io.ByteReader one byte at a time, so after it returns a record
// the current line is the one where that record ended.
type lineReader struct {
	br      *bufio.Reader
	t       *tracker
	name    string
	line    int
	afterNL bool
	closer  io.Closer
}

// ReadByte reads one byte and moves the tracker to this file and line.
func (l *lineReader) ReadByte() (byte, error) {
	b, err := l.br.ReadByte()
	if err != nil {
		return b, err
	}
	if l.afterNL {
		l.line++
		l.afterNL = false
	}
	l.afterNL = b == '\n'
	l.t.file, l.t.line = l.name, l.line
	return b, nil
}

// Read implements io.Reader through ReadByte.
func (l *lineReader) Read(p []byte) (int, error) {
	for i := range p {
		b, err := l.ReadByte()
		if err != nil {
			if i > 0 && errors.Is(err, io.EOF) {
				return i, nil
			}
			return i, err
		}
		p[i] = b
	}
	return len(p), nil
}

// Close closes the underlying included file.
func (l *lineReader) Close() error {
	if l.closer != nil {
		return l.closer.Close()
	}
	return nil
}

// Stat is needed by fs.File.
func (l *lineReader) Stat() (fs.FileInfo, error) {
	if s, ok := l.closer.(fs.File); ok {
		return s.Stat()
	}
	return nil, errors.New("zones: no file info")
}

// trackingFS opens $INCLUDE targets inside dir, wrapped to track lines.
type trackingFS struct {
	fsys fs.FS
	t    *tracker
}

// Open opens name inside dir.
func (t trackingFS) Open(name string) (fs.File, error) {
	f, err := t.fsys.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file", name)
	}
	lr := t.t.wrap(f, name)
	lr.closer = f
	return lr, nil
}
