package api

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/miekg/dns"

	"github.com/shardns/shardns/internal/dnsmsg"
	"github.com/shardns/shardns/internal/lookup"
)

// Media types of RFC 8484 and of the JSON form.
const (
	mimeDNSMessage = "application/dns-message"
	mimeDNSJSON    = "application/dns-json"
)

// maxDNSMessage is the largest DNS message (RFC 8484 §6: the body of a
// POST; a GET's dns parameter decodes to no more).
const maxDNSMessage = 65535

// dohGet is RFC 8484 §4.1's GET: the query in the dns parameter, base64url
// without padding. Without a dns parameter, a client that accepts
// application/dns-json (or says ct=application/dns-json) gets /lookup's
// answer to name and type.
func (a *API) dohGet(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	enc, ok := v["dns"]
	if !ok {
		if acceptsJSON(r) {
			a.lookupJSON(w, r, mimeDNSJSON)
			return
		}
		writeError(w, http.StatusBadRequest, "missing dns parameter (RFC 8484), or name with Accept: "+mimeDNSJSON)
		return
	}
	if len(enc) != 1 {
		writeError(w, http.StatusBadRequest, "more than one dns parameter")
		return
	}
	wire, err := base64.RawURLEncoding.DecodeString(enc[0])
	if err != nil {
		writeError(w, http.StatusBadRequest, "dns parameter is not base64url without padding")
		return
	}
	a.serveWire(w, r, wire)
}

// dohPost is RFC 8484 §4.1's POST: the query is the body.
func (a *API) dohPost(w http.ResponseWriter, r *http.Request) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mimeDNSMessage {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be "+mimeDNSMessage)
		return
	}
	if r.ContentLength > maxDNSMessage {
		writeError(w, http.StatusRequestEntityTooLarge, "a DNS message is at most 65535 bytes")
		return
	}
	wire, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxDNSMessage))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "a DNS message is at most 65535 bytes")
			return
		}
		writeError(w, http.StatusBadRequest, "reading the body failed")
		return
	}
	a.serveWire(w, r, wire)
}

// acceptsJSON reports whether the client asked for dns-json.
func acceptsJSON(r *http.Request) bool {
	if r.URL.Query().Get("ct") == mimeDNSJSON {
		return true
	}
	for _, h := range r.Header.Values("Accept") {
		for _, part := range strings.Split(h, ",") {
			if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mimeDNSJSON {
				return true
			}
		}
	}
	return false
}

// serveWire answers one DNS query in wire form. A message that is not a
// query, or does not parse, is a 400; a query shardns refuses (FORMERR,
// NOTIMP, BADVERS) and a failed lookup (SERVFAIL with an EDE) are DNS
// answers, 200, as over UDP.
func (a *API) serveWire(w http.ResponseWriter, r *http.Request, wire []byte) {
	switch {
	case len(wire) < 12:
		writeError(w, http.StatusBadRequest, "DNS message shorter than its header")
		return
	case wire[2]&0x80 != 0:
		writeError(w, http.StatusBadRequest, "DNS message is a response, not a query")
		return
	}
	req := new(dns.Msg)
	if err := req.Unpack(wire); err != nil || !dnsmsg.WellFormed(wire, req) {
		writeError(w, http.StatusBadRequest, "unparsable DNS message")
		return
	}
	out, err := a.answerWire(r.Context(), req)
	if err != nil {
		a.log.Error("api: doh reply could not be built", "err", err)
		writeError(w, http.StatusInternalServerError, "the answer could not be built")
		return
	}
	h := w.Header()
	h.Set("Content-Type", mimeDNSMessage)
	h.Set("Cache-Control", "max-age="+strconv.FormatUint(uint64(minTTL(out)), 10))
	h.Set("Content-Length", strconv.Itoa(len(out)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
}

// answerWire is the reply to req, as dnsd would send it over TCP.
func (a *API) answerWire(ctx context.Context, req *dns.Msg) ([]byte, error) {
	q, rej := dnsmsg.ParseQuery(req)
	if rej != nil {
		return pack(dnsmsg.ErrorReply(req, rej.Rcode, rej.EDE, rej.Text))
	}
	rep, err := a.answer(ctx, req, &q)
	switch {
	case errors.Is(err, errReply):
		return nil, err
	case err != nil:
		a.fails.warn("api: doh lookup failed", err, "key", q.Key)
		code, text := uint16(dns.ExtendedErrorCodeNoReachableAuthority), "resolver unreachable"
		if errors.Is(err, lookup.ErrTimeout) {
			code, text = dns.ExtendedErrorCodeNetworkError, "resolver did not answer in time"
		}
		return pack(dnsmsg.ErrorReply(req, dns.RcodeServerFailure, code, text))
	}
	return dnsmsg.Fit(rep.wire, maxDNSMessage), nil
}

func pack(m *dns.Msg) ([]byte, error) {
	out, err := m.Pack()
	if err != nil {
		return nil, errors.Join(errReply, err)
	}
	return out, nil
}

// minTTL is the freshness lifetime of a DoH answer (RFC 8484 §5.1): the
// smallest TTL of its records, 0 when it has none or does not parse.
func minTTL(msg []byte) uint32 {
	offs, err := dnsmsg.TTLOffsets(msg)
	if err != nil || len(offs) == 0 {
		return 0
	}
	lowest := uint32(1<<31 - 1)
	for _, o := range offs {
		v := binary.BigEndian.Uint32(msg[o:])
		if v&0x80000000 != 0 {
			v = 0 // RFC 2181 §8
		}
		lowest = min(lowest, v)
	}
	return lowest
}
