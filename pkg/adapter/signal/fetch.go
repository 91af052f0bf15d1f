// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

// maxAttachment is the largest attachment herald sends or fetches: 100 MiB,
// the limit of Signal's apps. A larger declared size is refused without a call; a larger file
// is refused before encoding.
const maxAttachment = 100 << 20

// dataKey is how the base64 data starts in getAttachment's result
// {"data":"…"}.
var dataKey = []byte(`"data"`)

// FetchMedia reads an attachment from the daemon with the JSON-RPC method
// getAttachment ({id, recipient | groupId}), whose result is
// {"data":"<base64>"}. signal-cli downloads and decrypts every attachment
// into its own store when it receives the message (unless it runs with
// --ignore-attachments) and keeps it there, so fetching after the event is
// stored loses nothing. The answer is decoded as it streams, never held
// whole: the body returned yields the file's bytes. An unknown id (signal-cli
// error -1) is ErrPermanent; the daemon not answering ErrTemporary.
func (a *Adapter) FetchMedia(ctx context.Context, msg *message.Inbound, att *message.Attachment) (io.ReadCloser, int64, error) {
	const method = "getAttachment"
	if att.Size > maxAttachment {
		return nil, 0, fmt.Errorf("signal: %s: %w: %w: declared size %d bytes, Signal attachments are at most %d",
			method, adapter.ErrPermanent, adapter.ErrTooLarge, att.Size, maxAttachment)
	}
	p := map[string]any{"id": att.Ref}
	if a.conf.Account != "" {
		p["account"] = a.conf.Account
	}
	if g, isGroup := strings.CutPrefix(msg.ChatID, GroupPrefix); isGroup {
		p["groupId"] = g
	} else {
		p["recipient"] = msg.ChatID
	}
	body, err := json.Marshal(newRequest(method, p))
	if err != nil {
		return nil, 0, fmt.Errorf("signal: %s: %w: %v", method, adapter.ErrPermanent, err)
	}
	resp, err := a.post(ctx, method, bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, 0, fmt.Errorf("signal: %s: %w", method, fetchErr(err))
	}
	data, err := openData(resp.Body)
	if err != nil {
		resp.Body.Close()
		return nil, 0, fmt.Errorf("signal: %s: %w", method, fetchErr(err))
	}
	size := int64(-1)
	if att.Size > 0 {
		size = att.Size
	}
	return struct {
		io.Reader
		io.Closer
	}{data, resp.Body}, size, nil
}

// fetchErr turns an ambiguous outcome, which matters only for sends, into a
// temporary one: reading an attachment again is harmless.
func fetchErr(err error) error {
	if errors.Is(err, adapter.ErrAmbiguous) {
		return fmt.Errorf("%w: %w", adapter.ErrTemporary, err)
	}
	return err
}

// openData reads a JSON-RPC answer up to the string value of "data" and
// returns a reader decoding it from base64 as it streams. An answer without
// it is decoded whole (it is small: an error) and classified.
func openData(r io.Reader) (io.Reader, error) {
	br := bufio.NewReaderSize(r, 32<<10)
	var head bytes.Buffer
	for {
		b, err := br.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				var out struct{}
				if derr := decodeAnswer("getAttachment", head.Bytes(), &out); derr != nil {
					return nil, derr
				}
				return nil, fmt.Errorf("%w: no data in the answer", adapter.ErrPermanent)
			}
			return nil, fmt.Errorf("%w: reading the answer: %v", adapter.ErrTemporary, err)
		}
		if head.Len() >= maxAnswer {
			return nil, fmt.Errorf("%w: answer without data in its first %d bytes", adapter.ErrPermanent, maxAnswer)
		}
		head.WriteByte(b)
		if b != '"' || !bytes.HasSuffix(head.Bytes(), dataKey) {
			continue
		}
		// "data" seen: a string value follows after ':' and spaces.
		if ok, err := stringValue(br, &head); err != nil {
			return nil, fmt.Errorf("%w: reading the answer: %v", adapter.ErrTemporary, err)
		} else if ok {
			return base64.NewDecoder(base64.StdEncoding, &quoted{r: br}), nil
		}
	}
}

// stringValue consumes `\s*:\s*"` after a key and reports whether it was
// there (the value is a string); what it read is appended to head.
func stringValue(br *bufio.Reader, head *bytes.Buffer) (bool, error) {
	colon := false
	for {
		b, err := br.ReadByte()
		if err != nil {
			return false, err
		}
		switch {
		case b == ' ' || b == '\t' || b == '\r' || b == '\n':
		case b == ':' && !colon:
			colon = true
		case b == '"' && colon:
			return true, nil
		default:
			if err := br.UnreadByte(); err != nil {
				return false, err
			}
			return false, nil
		}
		head.WriteByte(b)
	}
}

// quoted reads a JSON string's contents up to its closing quote. Base64 has
// no characters JSON escapes, except that "/" may be written "\/".
type quoted struct {
	r    *bufio.Reader
	done bool
}

func (q *quoted) Read(p []byte) (int, error) {
	if q.done {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) {
		if n > 0 && q.r.Buffered() == 0 {
			break // return what is there rather than wait
		}
		b, err := q.r.ReadByte()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return n, err
		}
		switch b {
		case '"':
			q.done = true
			if n == 0 {
				return 0, io.EOF
			}
			return n, nil
		case '\\':
			e, err := q.r.ReadByte()
			if err != nil {
				return n, io.ErrUnexpectedEOF
			}
			if e != '/' {
				return n, fmt.Errorf("unexpected escape \\%c in base64 data", e)
			}
			b = '/'
		}
		p[n] = b
		n++
	}
	return n, nil
}
