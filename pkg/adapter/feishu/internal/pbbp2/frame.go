// SPDX-License-Identifier: Apache-2.0

package pbbp2

import (
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
)

// Frame methods (field 4).
const (
	MethodControl int32 = 0 // ping, pong
	MethodData    int32 = 1 // event, card
)

// Header keys used by the protocol.
const (
	HeaderType       = "type"        // ping, pong, event, card
	HeaderMessageID  = "message_id"  // same across the fragments of one message
	HeaderSum        = "sum"         // fragment count, 1 if unsplit
	HeaderSeq        = "seq"         // 0-based fragment index
	HeaderTraceID    = "trace_id"    // platform trace id, for logs
	HeaderTimestamp  = "timestamp"   // ms
	HeaderInstanceID = "instance_id" // platform instance, echoed in acks
	HeaderBizRT      = "biz_rt"      // added by the client to its ack: handler ms
)

// Values of the "type" header.
const (
	TypePing  = "ping"
	TypePong  = "pong"
	TypeEvent = "event"
	TypeCard  = "card"
)

// Header is one key/value pair (message pbbp2.Header, both fields required).
type Header struct {
	Key   string
	Value string
}

// Frame is message pbbp2.Frame.
type Frame struct {
	SeqID           uint64   // 1, required
	LogID           uint64   // 2, required
	Service         int32    // 3, required
	Method          int32    // 4, required
	Headers         []Header // 5
	PayloadEncoding string   // 6
	PayloadType     string   // 7
	Payload         []byte   // 8, emitted only when non-nil
	LogIDNew        string   // 9
}

// Header returns the value of the first header named key, or "".
func (f *Frame) Header(key string) string {
	for _, h := range f.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

// HeaderInt returns the header named key as an int. ok is false when the
// header is missing; err is set when it is present but not an integer.
func (f *Frame) HeaderInt(key string) (n int, ok bool, err error) {
	for _, h := range f.Headers {
		if h.Key == key {
			n, err := strconv.Atoi(h.Value)
			if err != nil {
				return 0, true, fmt.Errorf("pbbp2: header %s=%q is not an integer", key, h.Value)
			}
			return n, true, nil
		}
	}
	return 0, false, nil
}

// Type returns the "type" header.
func (f *Frame) Type() string { return f.Header(HeaderType) }

// Marshal encodes f.
func (f *Frame) Marshal() []byte {
	return f.AppendMarshal(make([]byte, 0, f.size()))
}

// AppendMarshal appends the encoding of f to b, in field order like the
// SDK.
func (f *Frame) AppendMarshal(b []byte) []byte {
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, f.SeqID)
	b = protowire.AppendTag(b, 2, protowire.VarintType)
	b = protowire.AppendVarint(b, f.LogID)
	// int32 is encoded sign-extended to 64 bits, as proto requires.
	b = protowire.AppendTag(b, 3, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Service)))
	b = protowire.AppendTag(b, 4, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(int64(f.Method)))
	for _, h := range f.Headers {
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(h.size()))
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendString(b, h.Key)
		b = protowire.AppendTag(b, 2, protowire.BytesType)
		b = protowire.AppendString(b, h.Value)
	}
	b = protowire.AppendTag(b, 6, protowire.BytesType)
	b = protowire.AppendString(b, f.PayloadEncoding)
	b = protowire.AppendTag(b, 7, protowire.BytesType)
	b = protowire.AppendString(b, f.PayloadType)
	if f.Payload != nil {
		b = protowire.AppendTag(b, 8, protowire.BytesType)
		b = protowire.AppendBytes(b, f.Payload)
	}
	b = protowire.AppendTag(b, 9, protowire.BytesType)
	b = protowire.AppendString(b, f.LogIDNew)
	return b
}

func (h Header) size() int {
	return 1 + protowire.SizeBytes(len(h.Key)) + 1 + protowire.SizeBytes(len(h.Value))
}

func (f *Frame) size() int {
	n := 1 + protowire.SizeVarint(f.SeqID) +
		1 + protowire.SizeVarint(f.LogID) +
		1 + protowire.SizeVarint(uint64(int64(f.Service))) +
		1 + protowire.SizeVarint(uint64(int64(f.Method)))
	for _, h := range f.Headers {
		n += 1 + protowire.SizeBytes(h.size())
	}
	n += 1 + protowire.SizeBytes(len(f.PayloadEncoding))
	n += 1 + protowire.SizeBytes(len(f.PayloadType))
	if f.Payload != nil {
		n += 1 + protowire.SizeBytes(len(f.Payload))
	}
	n += 1 + protowire.SizeBytes(len(f.LogIDNew))
	return n
}

// ErrMalformed is wrapped by every decoding error.
var ErrMalformed = errors.New("pbbp2: malformed frame")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// Unmarshal decodes b into a new Frame. Like the SDK's decoder it rejects a
// frame that lacks one of the required fields 1-4 or a header that lacks its
// key or value, and skips unknown fields. Payload aliases b.
func Unmarshal(b []byte) (*Frame, error) {
	f := &Frame{}
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, malformed("tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		want, known := fieldTypes[num]
		if !known {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return nil, malformed("field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		if typ != want {
			return nil, malformed("field %d has wire type %d, want %d", num, typ, want)
		}
		if typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return nil, malformed("field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case 1:
				f.SeqID = v
			case 2:
				f.LogID = v
			case 3:
				f.Service = int32(v)
			case 4:
				f.Method = int32(v)
			}
			seen |= 1 << (num - 1)
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return nil, malformed("field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case 5:
			h, err := unmarshalHeader(v)
			if err != nil {
				return nil, err
			}
			f.Headers = append(f.Headers, h)
		case 6:
			f.PayloadEncoding = string(v)
		case 7:
			f.PayloadType = string(v)
		case 8:
			f.Payload = v
		case 9:
			f.LogIDNew = string(v)
		}
	}
	if seen != 0x0f {
		for i := range 4 {
			if seen&(1<<i) == 0 {
				return nil, malformed("required field %d missing", i+1)
			}
		}
	}
	return f, nil
}

var fieldTypes = map[protowire.Number]protowire.Type{
	1: protowire.VarintType,
	2: protowire.VarintType,
	3: protowire.VarintType,
	4: protowire.VarintType,
	5: protowire.BytesType,
	6: protowire.BytesType,
	7: protowire.BytesType,
	8: protowire.BytesType,
	9: protowire.BytesType,
}

func unmarshalHeader(b []byte) (Header, error) {
	var h Header
	var seen uint8
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Header{}, malformed("header tag: %v", protowire.ParseError(n))
		}
		b = b[n:]
		if num != 1 && num != 2 {
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return Header{}, malformed("header field %d: %v", num, protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		if typ != protowire.BytesType {
			return Header{}, malformed("header field %d has wire type %d", num, typ)
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return Header{}, malformed("header field %d: %v", num, protowire.ParseError(n))
		}
		b = b[n:]
		if num == 1 {
			h.Key = string(v)
		} else {
			h.Value = string(v)
		}
		seen |= 1 << (num - 1)
	}
	if seen&1 == 0 {
		return Header{}, malformed("header key missing")
	}
	if seen&2 == 0 {
		return Header{}, malformed("header %q value missing", h.Key)
	}
	return h, nil
}
