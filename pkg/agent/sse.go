// SPDX-License-Identifier: Apache-2.0

package agent

import (
	"bytes"
	"errors"
	"io"
)

// maxEventBytes bounds one SSE line and the data of one event. A chat
// completion chunk is a few hundred bytes; a megabyte means a broken or
// hostile server, and buffering it without limit would let it exhaust memory.
const maxEventBytes = 1 << 20

// errSSETooLarge reports a line or an event above the reader's limit.
var errSSETooLarge = errors.New("event stream line or event larger than 1 MiB")

// sseEvent is one dispatched event or one comment line of a
// text/event-stream.
type sseEvent struct {
	// Type is the event: field; "" when none was given (the default
	// "message" type).
	Type string
	// Data is the data: lines joined with "\n", or the text of a comment.
	// It is only valid until the next call to next.
	Data []byte
	// ID is the last event id the stream set ("id:" lines persist until
	// changed, as in the specification); "" if none.
	ID string
	// Comment marks a ":" line. Servers send them as keepalives; they are
	// reported at once and do not disturb the event being assembled.
	Comment bool
}

// sseReader splits a text/event-stream (WHATWG HTML "Server-sent events")
// into events. It is written for herald rather than taken from a client
// library because those count keepalive comments as empty messages and give
// up after a few hundred of them, and hide event names.
//
// Lines end in CR, LF or CRLF, even when a CRLF pair is split across reads.
// retry: is ignored; id: is reported with each event, so a Runs API event
// stream can be resumed with Last-Event-ID (chat completion streams are
// never resumed: such a turn is retried as a whole). Unlike the specification, an event whose
// lines were complete but whose closing blank line is missing at EOF is still
// dispatched (servers commonly end with "data: [DONE]\n"); an unterminated
// last line is discarded as truncated.
type sseReader struct {
	r          io.Reader
	max        int
	buf        []byte // unread input is buf[start:end]
	start, end int
	err        error // sticky error of r
	skipLF     bool  // the last line ended in CR: a leading LF belongs to it
	started    bool  // the byte order mark has been checked

	typ     string
	data    []byte
	hasData bool
	lastID  string
}

func newSSEReader(r io.Reader, max int) *sseReader {
	return &sseReader{r: r, max: max, buf: make([]byte, min(4096, max))}
}

// next returns the next event or comment, io.EOF at the end of the stream,
// errSSETooLarge, or the error of the underlying reader.
func (r *sseReader) next() (sseEvent, error) {
	for {
		line, err := r.line()
		if err != nil {
			if err == io.EOF && r.hasData {
				return r.dispatch(), nil
			}
			return sseEvent{}, err
		}
		if len(line) == 0 {
			if r.hasData {
				return r.dispatch(), nil
			}
			r.typ = ""
			continue
		}
		if line[0] == ':' {
			return sseEvent{Data: trimSpace1(line[1:]), Comment: true}, nil
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], trimSpace1(line[i+1:])
		}
		switch string(field) {
		case "event":
			r.typ = internType(value)
		case "id":
			if bytes.IndexByte(value, 0) < 0 && string(value) != r.lastID {
				r.lastID = string(value)
			}
		case "data":
			if r.hasData {
				r.data = append(r.data, '\n')
			}
			if len(r.data)+len(value) > r.max {
				return sseEvent{}, errSSETooLarge
			}
			r.data = append(r.data, value...)
			r.hasData = true
		}
		// retry: and unknown fields are ignored.
	}
}

func (r *sseReader) dispatch() sseEvent {
	ev := sseEvent{Type: r.typ, Data: r.data, ID: r.lastID}
	r.typ, r.data, r.hasData = "", r.data[:0], false
	return ev
}

// line returns the next line without its terminator; it is valid until the
// next call.
func (r *sseReader) line() ([]byte, error) {
	for {
		if r.skipLF && r.start < r.end {
			if r.buf[r.start] == '\n' {
				r.start++
			}
			r.skipLF = false
		}
		if i := bytes.IndexAny(r.buf[r.start:r.end], "\r\n"); i >= 0 {
			line := r.buf[r.start : r.start+i]
			r.skipLF = r.buf[r.start+i] == '\r'
			r.start += i + 1
			if !r.started {
				r.started = true
				line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf"))
			}
			return line, nil
		}
		if r.err != nil {
			return nil, r.err
		}
		if r.end-r.start >= r.max {
			return nil, errSSETooLarge
		}
		r.fill()
	}
}

// fill reads more input, compacting and growing the buffer up to max.
func (r *sseReader) fill() {
	if r.start > 0 {
		r.end = copy(r.buf, r.buf[r.start:r.end])
		r.start = 0
	}
	if r.end == len(r.buf) {
		nb := make([]byte, min(2*len(r.buf), r.max))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	n, err := r.r.Read(r.buf[r.end:])
	r.end += n
	if err != nil {
		r.err = err
	}
}

// trimSpace1 removes the single space the format allows after a colon.
func trimSpace1(b []byte) []byte {
	if len(b) > 0 && b[0] == ' ' {
		return b[1:]
	}
	return b
}

// internType avoids an allocation per event for the names herald sees.
func internType(b []byte) string {
	switch string(b) {
	case "":
		return ""
	case "message":
		return "message"
	case "error":
		return "error"
	case eventToolProgress:
		return eventToolProgress
	default:
		return string(b)
	}
}

// eventToolProgress is the Hermes API server's event for a running tool.
const eventToolProgress = "hermes.tool.progress"
