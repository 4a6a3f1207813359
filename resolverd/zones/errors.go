package zones

import (
	"fmt"
	"regexp"
	"strconv"
)

// Error is a problem in a zone file, with the file and line where it was found.
type Error struct {
	// File is the path of the zone file (or of the file it includes).
	File string
	// Line is the line number, from 1 (0 when unknown).
	Line int
	// Err says what is wrong.
	Err error
}

// Error formats e as "zones: file:line: problem".
func (e *Error) Error() string {
	return fmt.Sprintf("zones: %s:%d: %v", e.File, e.Line, e.Err)
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// parseErrRE splits miekg/dns's ParseError text:
// "file: dns: what: \"token\" at line: L:C".
var parseErrRE = regexp.MustCompile(`(?s)^(.*?): dns: (.*) at line: (\d+):(\d+)$`)

// parserError turns an error of dns.ZoneParser into an *Error at the file
// and line the parser read last (or those the error names, if another file).
func parserError(err error, file string, line int) *Error {
	pe := &parseProblem{msg: err.Error(), err: err}
	m := parseErrRE.FindStringSubmatch(err.Error())
	if m == nil {
		return &Error{File: file, Line: line, Err: pe}
	}
	pe.msg = m[2]
	if m[1] == file {
		// The tracked line is right here; the parser's own counts from the
		// start of the text a $GENERATE produced.
		return &Error{File: file, Line: line, Err: pe}
	}
	n, _ := strconv.Atoi(m[3])
	return &Error{File: m[1], Line: n, Err: pe}
}

// parseProblem is the parser's message without its location, wrapping the
// parser's error.
type parseProblem struct {
	msg string
	err error
}

func (p *parseProblem) Error() string { return p.msg }
func (p *parseProblem) Unwrap() error { return p.err }
