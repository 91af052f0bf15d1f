// SPDX-License-Identifier: Apache-2.0

package pbbp2

import (
	"bytes"
	"encoding/hex"
	"errors"
	"reflect"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
)

// The SDK's ping frame as its gogo-generated Marshal writes it: fields 1-4
// present although zero, 6, 7 and 9 present although empty, no payload.
const pingGolden = "0800" + "1000" + "1807" + "2000" +
	"2a0c" + "0a04" + "74797065" + "1204" + "70696e67" +
	"3200" + "3a00" + "4a00"

func TestMarshalGolden(t *testing.T) {
	f := &Frame{Service: 7, Method: MethodControl, Headers: []Header{{HeaderType, TypePing}}}
	got := hex.EncodeToString(f.Marshal())
	if got != pingGolden {
		t.Fatalf("ping frame:\n got %s\nwant %s", got, pingGolden)
	}
}

func TestMarshalEmptyPayloadEmitted(t *testing.T) {
	withEmpty := (&Frame{Payload: []byte{}}).Marshal()
	without := (&Frame{}).Marshal()
	if len(withEmpty) != len(without)+2 {
		t.Fatalf("empty non-nil payload: got %x, want field 8 with length 0 added to %x", withEmpty, without)
	}
}

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    Frame
	}{
		{"zero", Frame{}},
		{"ping", Frame{Service: 7, Headers: []Header{{HeaderType, TypePing}}}},
		{"negative service", Frame{Service: -3, Method: -1}},
		{"large ids", Frame{SeqID: 1<<64 - 1, LogID: 1 << 40, Service: 1<<31 - 1, Method: MethodData}},
		{"event", Frame{
			SeqID: 9, LogID: 77, Service: 7, Method: MethodData,
			Headers: []Header{
				{HeaderType, TypeEvent}, {HeaderMessageID, "m1"}, {HeaderSum, "1"},
				{HeaderSeq, "0"}, {HeaderTraceID, "t"}, {"empty", ""},
			},
			PayloadEncoding: "enc", PayloadType: "json", Payload: []byte(`{"a":1}`), LogIDNew: "new",
		}},
		{"empty payload", Frame{Payload: []byte{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.f.Marshal()
			if len(b) != tt.f.size() {
				t.Errorf("size() = %d, encoded %d bytes", tt.f.size(), len(b))
			}
			got, err := Unmarshal(b)
			if err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if !reflect.DeepEqual(*got, tt.f) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", *got, tt.f)
			}
		})
	}
}

func TestUnmarshalErrors(t *testing.T) {
	valid := (&Frame{SeqID: 1, LogID: 2, Service: 3, Method: 1, Headers: []Header{{"type", "event"}}}).Marshal()
	var missing4 []byte
	missing4 = protowire.AppendTag(missing4, 1, protowire.VarintType)
	missing4 = protowire.AppendVarint(missing4, 1)
	missing4 = protowire.AppendTag(missing4, 2, protowire.VarintType)
	missing4 = protowire.AppendVarint(missing4, 1)
	missing4 = protowire.AppendTag(missing4, 3, protowire.VarintType)
	missing4 = protowire.AppendVarint(missing4, 1)

	var badHeader []byte
	badHeader = append(badHeader, valid[:8]...) // fields 1-4, one byte each
	badHeader = protowire.AppendTag(badHeader, 5, protowire.BytesType)
	badHeader = protowire.AppendBytes(badHeader, protowire.AppendString(protowire.AppendTag(nil, 1, protowire.BytesType), "k"))

	var wrongType []byte
	wrongType = protowire.AppendTag(wrongType, 1, protowire.BytesType)
	wrongType = protowire.AppendString(wrongType, "x")

	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"missing field 4", missing4},
		{"truncated", valid[:len(valid)-3]},
		{"header without value", badHeader},
		{"wrong wire type", wrongType},
		{"garbage", []byte{0xff, 0xff, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Unmarshal(tt.in)
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal(%x) = %+v, %v; want ErrMalformed", tt.in, f, err)
			}
		})
	}
}

func TestUnknownFieldsSkipped(t *testing.T) {
	b := (&Frame{SeqID: 5, Method: 1}).Marshal()
	b = protowire.AppendTag(b, 15, protowire.BytesType)
	b = protowire.AppendString(b, "future")
	b = protowire.AppendTag(b, 16, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, 1)
	f, err := Unmarshal(b)
	if err != nil || f.SeqID != 5 {
		t.Fatalf("Unmarshal with unknown fields = %+v, %v", f, err)
	}
}

func TestHeaderInt(t *testing.T) {
	f := &Frame{Headers: []Header{{"sum", "3"}, {"seq", "x"}}}
	if n, ok, err := f.HeaderInt("sum"); n != 3 || !ok || err != nil {
		t.Errorf("HeaderInt(sum) = %d, %v, %v", n, ok, err)
	}
	if _, ok, err := f.HeaderInt("seq"); !ok || err == nil {
		t.Errorf("HeaderInt(seq) = _, %v, %v; want present and an error", ok, err)
	}
	if _, ok, err := f.HeaderInt("none"); ok || err != nil {
		t.Errorf("HeaderInt(none) = _, %v, %v; want absent", ok, err)
	}
}

// FuzzUnmarshal checks that the decoder never panics and that whatever it
// accepts survives a re-encoding unchanged. The seeds run as part of go test.
func FuzzUnmarshal(f *testing.F) {
	seed, _ := hex.DecodeString(pingGolden)
	f.Add(seed)
	f.Add((&Frame{SeqID: 1, LogID: 2, Service: -1, Method: 1, Headers: []Header{{"type", "event"}, {"sum", "2"}},
		Payload: []byte(`{"schema":"2.0"}`)}).Marshal())
	f.Add([]byte{})
	f.Add([]byte{0x08})
	f.Add([]byte{0x2a, 0x80})
	f.Add(bytes.Repeat([]byte{0x2a, 0x00}, 4))
	// A 1-byte event fragment in a 64 KiB websocket message.
	f.Add((&Frame{Method: MethodData, Headers: []Header{{HeaderType, TypeEvent}, {HeaderSum, "2"}, {HeaderSeq, "0"},
		{HeaderTraceID, string(bytes.Repeat([]byte("t"), 64<<10))}}, Payload: []byte("z")}).Marshal())
	// A pong carrying a ClientConfig whose PingInterval overflows.
	f.Add((&Frame{Headers: []Header{{HeaderType, TypePong}}, Payload: []byte(`{"PingInterval":9300000000}`)}).Marshal())
	// Lengths past the end, a 10-byte varint, groups, field 0, a repeated
	// payload, a header with unknown fields and a header without value.
	f.Add([]byte{0x42, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x00})
	f.Add([]byte{0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x10, 0, 0x18, 0, 0x20, 0})
	f.Add([]byte{0x0b, 0x0c, 0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0})
	f.Add([]byte{0x00, 0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0})
	f.Add([]byte{0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0, 0x42, 1, 'a', 0x42, 1, 'b'})
	f.Add([]byte{0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0, 0x2a, 8, 0x0a, 1, 'k', 0x12, 1, 'v', 0x18, 1})
	f.Add([]byte{0x08, 0, 0x10, 0, 0x18, 0, 0x20, 0, 0x2a, 3, 0x0a, 1, 'k'})
	f.Fuzz(func(t *testing.T, data []byte) {
		fr, err := Unmarshal(data)
		if len(data) <= 4096 {
			// Allocations grow with the input, never with what a length
			// field claims.
			if n := testing.AllocsPerRun(2, func() { _, _ = Unmarshal(data) }); n > float64(len(data)/2+16) {
				t.Fatalf("%v allocations for %d bytes", n, len(data))
			}
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		held := len(fr.Payload) + len(fr.PayloadEncoding) + len(fr.PayloadType) + len(fr.LogIDNew)
		for _, h := range fr.Headers {
			held += len(h.Key) + len(h.Value)
			if _, ok, _ := fr.HeaderInt(h.Key); !ok {
				t.Fatalf("HeaderInt(%q) does not find the header", h.Key)
			}
		}
		if held > len(data) {
			t.Fatalf("decoded %d bytes of fields from %d bytes", held, len(data))
		}
		b := fr.Marshal()
		if len(b) != fr.size() {
			t.Fatalf("size() = %d, encoded %d", fr.size(), len(b))
		}
		again, err := Unmarshal(b)
		if err != nil {
			t.Fatalf("re-decoding %x: %v", b, err)
		}
		if !reflect.DeepEqual(fr, again) {
			t.Fatalf("re-encoding changed the frame:\n%+v\n%+v", fr, again)
		}
	})
}

func benchFrame() *Frame {
	return &Frame{
		SeqID: 123456, LogID: 987654321, Service: 7, Method: MethodData,
		Headers: []Header{
			{HeaderType, TypeEvent}, {HeaderMessageID, "f7b2c3d4e5"}, {HeaderSum, "1"}, {HeaderSeq, "0"},
			{HeaderTraceID, "0af1c2d3e4f5"}, {HeaderTimestamp, "1700000000000"},
		},
		Payload: bytes.Repeat([]byte("x"), 2048),
	}
}

func BenchmarkMarshal(b *testing.B) {
	f := benchFrame()
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.AppendMarshal(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkUnmarshal(b *testing.B) {
	data := benchFrame().Marshal()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Unmarshal(data); err != nil {
			b.Fatal(err)
		}
	}
}
