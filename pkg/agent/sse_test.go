// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// collect reads every item of stream and renders each one as a string:
// "#text" for a comment, "type=data" for an event. It ends with the error
// that stopped the reader, "EOF" included.
func collect(r io.Reader, max int) ([]string, error) {
	sr := newSSEReader(r, max)
	var out []string
	for i := 0; ; i++ {
		ev, err := sr.next()
		if err != nil {
			return out, err
		}
		if i > 10000 {
			return out, errors.New("reader does not progress")
		}
		if ev.Comment {
			out = append(out, "#"+string(ev.Data))
			continue
		}
		if len(ev.Data) > max {
			return out, fmt.Errorf("event of %d bytes exceeds %d", len(ev.Data), max)
		}
		out = append(out, ev.Type+"="+string(ev.Data))
	}
}

func TestSSEReader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int // 0: maxEventBytes
		want []string
		err  error // io.EOF unless set
	}{
		{"empty", "", 0, nil, nil},
		{"one event", "data: hello\n\n", 0, []string{"=hello"}, nil},
		{"no space after colon", "data:hello\n\n", 0, []string{"=hello"}, nil},
		{"only one space stripped", "data:  two\n\n", 0, []string{"= two"}, nil},
		{"multi-line data", "data: a\ndata: b\ndata:\n\n", 0, []string{"=a\nb\n"}, nil},
		{"empty data dispatched", "data:\n\n", 0, []string{"="}, nil},
		{"CRLF", "data: a\r\n\r\ndata: b\r\n\r\n", 0, []string{"=a", "=b"}, nil},
		{"CR", "data: a\r\rdata: b\r\r", 0, []string{"=a", "=b"}, nil},
		{"mixed endings", "data: a\r\ndata: b\rdata: c\n\r\n", 0, []string{"=a\nb\nc"}, nil},
		{"comment keepalive", ": keepalive\n\ndata: x\n\n", 0, []string{"#keepalive", "=x"}, nil},
		{"comment inside event", "data: a\n: ping\ndata: b\n\n", 0, []string{"#ping", "=a\nb"}, nil},
		{"bare colon comment", ":\n\n", 0, []string{"#"}, nil},
		{"event name", "event: hermes.tool.progress\ndata: {\"tool\":\"x\"}\n\n", 0,
			[]string{"hermes.tool.progress={\"tool\":\"x\"}"}, nil},
		{"event name reset after dispatch", "event: a\ndata: 1\n\ndata: 2\n\n", 0, []string{"a=1", "=2"}, nil},
		{"event without data not dispatched", "event: a\n\ndata: 2\n\n", 0, []string{"=2"}, nil},
		{"retry and id ignored", "retry: 3000\nid: 7\ndata: x\n\n", 0, []string{"=x"}, nil},
		{"unknown field ignored", "foo: bar\nfoo\ndata: x\n\n", 0, []string{"=x"}, nil},
		{"field without colon", "data\n\n", 0, []string{"="}, nil},
		{"leading blank lines", "\n\n\r\ndata: x\n\n", 0, []string{"=x"}, nil},
		{"byte order mark", "\xef\xbb\xbfdata: x\n\n", 0, []string{"=x"}, nil},
		{"missing final blank line", "data: [DONE]\n", 0, []string{"=[DONE]"}, nil},
		{"unterminated last line dropped", "data: a\n\ndata: {\"cho", 0, []string{"=a"}, nil},
		{"unterminated line of pending event", "data: a\ndata: b", 0, []string{"=a"}, nil},
		{"line at limit", "data: " + strings.Repeat("x", 10) + "\n\n", 17, []string{"=" + strings.Repeat("x", 10)}, nil},
		{"line too long", "data: " + strings.Repeat("x", 40) + "\n\n", 32, nil, errSSETooLarge},
		{"unterminated line too long", strings.Repeat("x", 100), 32, nil, errSSETooLarge},
		{"event too large", strings.Repeat("data: 0123456789\n", 5) + "\n", 32, nil, errSSETooLarge},
		{"many small events within limit", strings.Repeat("data: 0123456789\n\n", 20), 32,
			func() []string {
				var s []string
				for range 20 {
					s = append(s, "=0123456789")
				}
				return s
			}(), nil},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"whole", func(r io.Reader) io.Reader { return r }},
		{"one byte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"data+EOF", iotest.DataErrReader},
	}
	for _, tt := range tests {
		for _, rd := range readers {
			t.Run(tt.name+"/"+rd.name, func(t *testing.T) {
				max := tt.max
				if max == 0 {
					max = maxEventBytes
				}
				got, err := collect(rd.wrap(strings.NewReader(tt.in)), max)
				want := tt.err
				if want == nil {
					want = io.EOF
				}
				if !errors.Is(err, want) {
					t.Errorf("error %v, want %v", err, want)
				}
				if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			})
		}
	}
}

// TestSSEReaderSplitEverywhere feeds a stream that uses every line ending in
// two pieces, split at each possible offset.
func TestSSEReaderSplitEverywhere(t *testing.T) {
	in := ": keepalive\r\n\r\nevent: hermes.tool.progress\rdata: {\"a\":1}\r\rdata: x\ndata: y\r\n\r\ndata: [DONE]\n\n"
	want, err := collect(strings.NewReader(in), maxEventBytes)
	if err != io.EOF {
		t.Fatal(err)
	}
	if len(want) != 4 {
		t.Fatalf("reference parse gave %q", want)
	}
	for i := 0; i <= len(in); i++ {
		r := io.MultiReader(strings.NewReader(in[:i]), strings.NewReader(in[i:]))
		got, err := collect(r, maxEventBytes)
		if err != io.EOF || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("split at %d: got %q, %v; want %q", i, got, err, want)
		}
	}
}

func TestSSEReaderReadError(t *testing.T) {
	boom := errors.New("boom")
	r := io.MultiReader(strings.NewReader("data: a\n\ndata: b\n"), iotest.ErrReader(boom))
	got, err := collect(r, maxEventBytes)
	if !errors.Is(err, boom) || len(got) != 1 {
		t.Errorf("got %q, %v; want one event and boom (a pending event is not dispatched on a read error)", got, err)
	}
}

func FuzzSSE(f *testing.F) {
	for _, s := range []string{
		"data: hello\n\n",
		": keepalive\r\n\r\ndata: a\r\ndata: b\r\n\r\n",
		"event: hermes.tool.progress\rdata: {}\r\r",
		"retry: 10\nid: 1\ndata\n\n",
		"\xef\xbb\xbfdata: [DONE]\n",
		"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
		"\r\r\n\n:\n" + strings.Repeat("data: x\n", 10),
		strings.Repeat("x", 200),
		// Hostile streams: a line that never ends, an event assembled from
		// many lines past the limit, a keepalive flood, a CR flood, a byte
		// order mark past the start, NULs and invalid UTF-8, an error event,
		// data after [DONE], content that is not a string.
		"data: " + strings.Repeat("A", 1<<16),
		strings.Repeat("data: 0123456789\n", 100) + "\n",
		strings.Repeat(":\n", 5000) + "data: [DONE]\n\n",
		strings.Repeat("\r", 5000) + "data: x\r\r",
		"data: a\n\n\xef\xbb\xbfdata: b\n\n",
		"data: \x00\xff\xfe\n\nevent: \x00\ndata: {}\n\n",
		"event: error\ndata: upstream exploded\n\n",
		"data: {\"error\":{\"message\":\"quota\",\"code\":429}}\n\n",
		"data: [DONE]\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"late\"}}]}\n\n",
		"data: {\"choices\":[{\"delta\":{\"content\":[1,2]}}]}\n\n",
		"data: {\"choices\":[{\"index\":1,\"delta\":{\"content\":\"other\"}},{\"delta\":{\"content\":\"x\"},\"finish_reason\":\"stop\"}]}\n",
	} {
		f.Add([]byte(s), uint8(7))
	}
	f.Fuzz(func(t *testing.T, in []byte, split uint8) {
		const max = 64
		want, wantErr := collect(bytes.NewReader(in), max)
		// However the input is cut into reads, the result is the same.
		s := int(split) % (len(in) + 1)
		got, gotErr := collect(io.MultiReader(bytes.NewReader(in[:s]), iotest.OneByteReader(bytes.NewReader(in[s:]))), max)
		if fmt.Sprint(got) != fmt.Sprint(want) || !errors.Is(gotErr, wantErr) {
			t.Fatalf("split at %d: got %q, %v; whole input gave %q, %v", s, got, gotErr, want, wantErr)
		}
		if wantErr != io.EOF && wantErr != errSSETooLarge {
			t.Fatalf("unexpected error %v", wantErr)
		}
		// The reader's memory stays within its limit, whatever the input.
		sr := newSSEReader(bytes.NewReader(in), max)
		for {
			if _, err := sr.next(); err != nil {
				break
			}
			if len(sr.buf) > max || cap(sr.data) > 2*max+8 {
				t.Fatalf("buffers of %d and %d bytes with a limit of %d", len(sr.buf), cap(sr.data), max)
			}
		}
		// The chunk decoder on top never panics, keeps the reply within
		// what the input carried and fails with one of the agent's errors.
		st := &stream{}
		err := st.readSSE(bytes.NewReader(in))
		if st.reply.Len() > len(in) {
			t.Fatalf("reply of %d bytes from %d bytes of input", st.reply.Len(), len(in))
		}
		var se *serverError
		if err != nil && !errors.Is(err, ErrProtocol) && !errors.Is(err, ErrUnavailable) && !errors.As(err, &se) {
			t.Fatalf("readSSE error %T %v", err, err)
		}
	})
}

// benchStream is a typical streamed reply: role chunk, keepalive, tool
// progress, 200 content chunks, usage chunk, [DONE].
var benchStream = func() []byte {
	var b bytes.Buffer
	b.WriteString("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"},\"finish_reason\":null}]}\n\n")
	b.WriteString(": keepalive\n\n")
	b.WriteString("event: hermes.tool.progress\ndata: {\"tool\":\"web_search\",\"label\":\"searching\",\"status\":\"running\"}\n\n")
	for range 200 {
		b.WriteString("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" word\"},\"finish_reason\":null}]}\n\n")
	}
	b.WriteString("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n")
	b.WriteString("data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":200,\"total_tokens\":205}}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}()

func BenchmarkSSEParse(b *testing.B) {
	b.Run("reader", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStream)))
		for b.Loop() {
			sr := newSSEReader(bytes.NewReader(benchStream), maxEventBytes)
			for {
				if _, err := sr.next(); err != nil {
					break
				}
			}
		}
	})
	b.Run("reader+chunks", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(benchStream)))
		for b.Loop() {
			s := &stream{}
			if err := s.readSSE(bytes.NewReader(benchStream)); err != nil {
				b.Fatal(err)
			}
			if s.reply.Len() != 200*len(" word") {
				b.Fatalf("reply of %d bytes", s.reply.Len())
			}
		}
	})
}
