// Package codec is a gRPC codec for the messages of a DNS query's trip
// between dnsd and resolverd: shardns.resolver.v1's ResolveRequest,
// ResolveResponse, StreamRequest and StreamResponse, and CoreDNS's
// DnsPacket. It writes and reads them field by field with protowire, in
// the bytes the generated code gives (fields in number order, zero values
// left out), into buffers from gRPC's pool, where gRPC's own proto codec
// goes through protobuf reflection and a buffer of its own for each. Every
// other message (health, reflection) goes to gRPC's proto codec, so the
// codec stands in for it on a whole client or server, and peers that use
// the generated code see no difference.
package codec

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/shardns/shardns/proto/corednsv1"
	"github.com/shardns/shardns/proto/resolverv1"
)

// Codec is the codec. Its zero value is not usable: build it with New.
type Codec struct {
	fallback encoding.CodecV2
	pool     mem.BufferPool
}

var _ encoding.CodecV2 = Codec{}

// New returns the codec, falling back to gRPC's registered proto codec.
func New() Codec {
	return Codec{fallback: encoding.GetCodecV2(grpcproto.Name), pool: mem.DefaultBufferPool()}
}

// Name is gRPC's name for protobuf ("proto"): the content-subtype on the
// wire says protobuf, as it is.
func (Codec) Name() string { return grpcproto.Name }

// pooledMin is the least capacity mem.NewBuffer gives back to its pool
// (mem.IsBelowBufferPoolingThreshold): a message is written into a buffer
// at least this large so that it returns to the pool once sent, rather
// than becoming garbage.
const pooledMin = 1<<10 + 1

// Marshal encodes v. Like the generated code, it refuses a string that is
// not UTF-8.
func (c Codec) Marshal(v any) (mem.BufferSlice, error) {
	var size int
	switch m := v.(type) {
	case *resolverv1.ResolveRequest:
		size = sizeBytes(1, len(m.Query))
	case *resolverv1.ResolveResponse:
		if !utf8.ValidString(m.Upstream) {
			return nil, fmt.Errorf("codec: %T: %w", v, errUTF8)
		}
		size = sizeBytes(1, len(m.Answer)) + sizeBytes(2, len(m.Upstream)) + sizeVarint(3, uint64(m.RttMicros))
	case *resolverv1.StreamRequest:
		size = sizeVarint(1, m.Id) + sizeBytes(2, len(m.Query)) + sizeVarint(3, uint64(m.TimeoutMicros))
	case *resolverv1.StreamResponse:
		if !utf8.ValidString(m.Upstream) || !utf8.ValidString(m.Message) {
			return nil, fmt.Errorf("codec: %T: %w", v, errUTF8)
		}
		size = sizeVarint(1, m.Id) + sizeBytes(2, len(m.Answer)) + sizeBytes(3, len(m.Upstream)) +
			sizeVarint(4, uint64(m.RttMicros)) + sizeVarint(5, uint64(int64(m.Code))) + sizeBytes(6, len(m.Message))
	case *corednsv1.DnsPacket:
		size = sizeBytes(1, len(m.Msg))
	default:
		return c.fallback.Marshal(v)
	}
	buf := c.pool.Get(max(size, pooledMin))
	b := (*buf)[:0]
	switch m := v.(type) {
	case *resolverv1.ResolveRequest:
		b = appendBytes(b, 1, m.Query)
	case *resolverv1.ResolveResponse:
		b = appendBytes(b, 1, m.Answer)
		b = appendString(b, 2, m.Upstream)
		b = appendVarint(b, 3, uint64(m.RttMicros))
	case *resolverv1.StreamRequest:
		b = appendVarint(b, 1, m.Id)
		b = appendBytes(b, 2, m.Query)
		b = appendVarint(b, 3, uint64(m.TimeoutMicros))
	case *resolverv1.StreamResponse:
		b = appendVarint(b, 1, m.Id)
		b = appendBytes(b, 2, m.Answer)
		b = appendString(b, 3, m.Upstream)
		b = appendVarint(b, 4, uint64(m.RttMicros))
		b = appendVarint(b, 5, uint64(int64(m.Code))) // int32 goes sign-extended
		b = appendString(b, 6, m.Message)
	case *corednsv1.DnsPacket:
		b = appendBytes(b, 1, m.Msg)
	}
	*buf = b
	return mem.BufferSlice{mem.NewBuffer(buf, c.pool)}, nil
}

// Unmarshal decodes data into v, replacing what v held. Fields it does not
// know are skipped; bytes are copied out of data, which gRPC frees after.
func (c Codec) Unmarshal(data mem.BufferSlice, v any) error {
	switch v.(type) {
	case *resolverv1.ResolveRequest, *resolverv1.ResolveResponse,
		*resolverv1.StreamRequest, *resolverv1.StreamResponse, *corednsv1.DnsPacket:
	default:
		return c.fallback.Unmarshal(data, v)
	}
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	if err := unmarshal(b, v); err != nil {
		return fmt.Errorf("codec: %T: %w", v, err)
	}
	return nil
}

// unmarshal decodes b into v, one of the messages Unmarshal takes.
func unmarshal(b []byte, v any) error {
	switch m := v.(type) {
	case *resolverv1.ResolveRequest:
		*m = resolverv1.ResolveRequest{}
		return walk(b, func(f field) error {
			if f.is(1, protowire.BytesType) {
				m.Query = clone(f.bytes)
			}
			return nil
		})
	case *resolverv1.ResolveResponse:
		*m = resolverv1.ResolveResponse{}
		return walk(b, func(f field) (err error) {
			switch {
			case f.is(1, protowire.BytesType):
				m.Answer = clone(f.bytes)
			case f.is(2, protowire.BytesType):
				m.Upstream, err = f.string()
			case f.is(3, protowire.VarintType):
				m.RttMicros = int64(f.varint)
			}
			return err
		})
	case *resolverv1.StreamRequest:
		*m = resolverv1.StreamRequest{}
		return walk(b, func(f field) error {
			switch {
			case f.is(1, protowire.VarintType):
				m.Id = f.varint
			case f.is(2, protowire.BytesType):
				m.Query = clone(f.bytes)
			case f.is(3, protowire.VarintType):
				m.TimeoutMicros = int64(f.varint)
			}
			return nil
		})
	case *resolverv1.StreamResponse:
		*m = resolverv1.StreamResponse{}
		return walk(b, func(f field) (err error) {
			switch {
			case f.is(1, protowire.VarintType):
				m.Id = f.varint
			case f.is(2, protowire.BytesType):
				m.Answer = clone(f.bytes)
			case f.is(3, protowire.BytesType):
				m.Upstream, err = f.string()
			case f.is(4, protowire.VarintType):
				m.RttMicros = int64(f.varint)
			case f.is(5, protowire.VarintType):
				m.Code = int32(f.varint) // the low 32 bits, as protobuf reads an int32
			case f.is(6, protowire.BytesType):
				m.Message, err = f.string()
			}
			return err
		})
	case *corednsv1.DnsPacket:
		*m = corednsv1.DnsPacket{}
		return walk(b, func(f field) error {
			if f.is(1, protowire.BytesType) {
				m.Msg = clone(f.bytes)
			}
			return nil
		})
	}
	return fmt.Errorf("not a message of the codec's")
}

// field is one field read from a message: varint holds a varint's value,
// bytes a length-delimited one's.
type field struct {
	num    protowire.Number
	typ    protowire.Type
	varint uint64
	bytes  []byte
}

func (f field) is(num protowire.Number, typ protowire.Type) bool { return f.num == num && f.typ == typ }

// errUTF8 is protobuf's rule for proto3 strings.
var errUTF8 = errors.New("string field is not valid UTF-8")

// string is f's bytes as a string, which proto3 requires to be UTF-8.
func (f field) string() (string, error) {
	if !utf8.Valid(f.bytes) {
		return "", errUTF8
	}
	return string(f.bytes), nil
}

// walk calls fn for each field of b in order. Fields of other types than
// varint and bytes are checked and skipped; a field with a known number
// but another type is one fn does not take, as protobuf keeps it as
// unknown.
func walk(b []byte, fn func(field) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		f := field{num: num, typ: typ}
		switch typ {
		case protowire.VarintType:
			f.varint, n = protowire.ConsumeVarint(b)
		case protowire.BytesType:
			f.bytes, n = protowire.ConsumeBytes(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if err := fn(f); err != nil {
			return err
		}
	}
	return nil
}

// clone copies b (never nil for a field that was present, as protobuf).
func clone(b []byte) []byte { return append([]byte{}, b...) }

func sizeBytes(num protowire.Number, n int) int {
	if n == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeBytes(n)
}

func sizeVarint(num protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(num) + protowire.SizeVarint(v)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	return protowire.AppendBytes(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendString(b []byte, num protowire.Number, v string) []byte {
	if v == "" {
		return b
	}
	return protowire.AppendString(protowire.AppendTag(b, num, protowire.BytesType), v)
}

func appendVarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	return protowire.AppendVarint(protowire.AppendTag(b, num, protowire.VarintType), v)
}
