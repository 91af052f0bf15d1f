// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaSender = (*Adapter)(nil)

// SendsMedia implements adapter.MediaSender: every kind is an attachment.
func (a *Adapter) SendsMedia(kind message.MediaKind) bool { return kind.Valid() }

// sendMedia sends msg.Media as the one attachment of a message: send with
// params.attachments = ["data:<MIME type>;filename=<name>;base64,<data>"]
// (a data URI as RFC 2397 describes it, with the file name signal-cli
// reads) and the caption (Media.Caption, after msg.Text when set: a resend's
// mark) as the message. The request is streamed: the file is base64-encoded
// as it is read from Media.Path, never held whole. A file over Signal's
// 100 MiB is ErrTooLarge before anything is encoded, and so is a 413 or an
// error saying the attachment is too large. Recipients, quotes and errors
// are as for text, ErrAmbiguous included: Signal has no idempotency key, and
// Recover applies interrupted_send.
func (a *Adapter) sendMedia(ctx context.Context, msg *message.Outbound) (adapter.SendResult, error) {
	const method = "send"
	m := msg.Media
	f, size, err := adapter.OpenMedia(m)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w", err)
	}
	defer f.Close()
	if size > maxAttachment {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w: %w: %d bytes, Signal attachments are at most %d",
			adapter.ErrPermanent, adapter.ErrTooLarge, size, maxAttachment)
	}
	params, err := a.sendParams(msg, caption(msg.Text, m.Caption))
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w", err)
	}
	// The request is marshalled with a placeholder for the base64 data,
	// which is then streamed in its place. "attachments" sorts before
	// "message", so the first occurrence is the placeholder's.
	placeholder := "herald-attachment-" + strconv.FormatUint(rpcSeq.Add(1), 36)
	params["attachments"] = []string{dataURIPrefix(m.MIME, m.Name) + placeholder}
	raw, err := json.Marshal(newRequest(method, params))
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w: %v", adapter.ErrPermanent, err)
	}
	i := bytes.Index(raw, []byte(placeholder))
	if i < 0 {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w: cannot place the attachment", adapter.ErrPermanent)
	}
	head, tail := raw[:i], raw[i+len(placeholder):]
	body := io.MultiReader(bytes.NewReader(head), newBase64Reader(io.NewSectionReader(f, 0, size)), bytes.NewReader(tail))
	length := int64(len(head)) + int64(base64.StdEncoding.EncodedLen(int(size))) + int64(len(tail))

	cctx, cancel := context.WithTimeout(ctx, adapter.UploadTimeout(a.conf.RequestTimeout, size))
	defer cancel()
	resp, err := a.post(cctx, method, body, length)
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w", err)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w: reading the answer: %v", adapter.ErrAmbiguous, err)
	}
	var res sendResult
	if err := decodeAnswer(method, answer, &res); err != nil {
		var r rpcResponse
		if json.Unmarshal(answer, &r) == nil && r.Error != nil && tooLarge(r.Error.Message) {
			return adapter.SendResult{}, fmt.Errorf("signal: send media: %w: %w: %s", adapter.ErrPermanent, adapter.ErrTooLarge, r.Error.Message)
		}
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w", err)
	}
	if err := a.outcome(res); err != nil {
		return adapter.SendResult{}, fmt.Errorf("signal: send media: %w", err)
	}
	return adapter.SendResult{MessageID: strconv.FormatInt(res.Timestamp, 10)}, nil
}

// tooLarge reports whether a signal-cli error message says the attachment
// is too big.
func tooLarge(msg string) bool {
	low := strings.ToLower(msg)
	return strings.Contains(low, "too large") || strings.Contains(low, "too big")
}

// dataURIPrefix is "data:<mime>;filename=<name>;base64,". The name loses the
// characters that end a data URI parameter (";" and ",").
func dataURIPrefix(mime, name string) string {
	if mime == "" || strings.ContainsAny(mime, ";, ") {
		mime = "application/octet-stream"
	}
	name = strings.Map(func(r rune) rune {
		if r == ';' || r == ',' || r < ' ' {
			return '_'
		}
		return r
	}, name)
	if name == "" {
		name = "file"
	}
	return "data:" + mime + ";filename=" + name + ";base64,"
}

// caption joins a text (Recover's mark) and a media caption.
func caption(text, mediaCaption string) string {
	return strings.TrimSpace(strings.TrimSpace(text) + "\n" + strings.TrimSpace(mediaCaption))
}

// base64Reader encodes src as standard base64 as it is read.
type base64Reader struct {
	src io.Reader
	in  [3 * 1024]byte
	out []byte
	buf [4 * 1024]byte
	eof bool
}

func newBase64Reader(src io.Reader) *base64Reader { return &base64Reader{src: src} }

func (r *base64Reader) Read(p []byte) (int, error) {
	for len(r.out) == 0 {
		if r.eof {
			return 0, io.EOF
		}
		n, err := io.ReadFull(r.src, r.in[:])
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			r.eof = true
		case err != nil:
			return 0, err
		}
		base64.StdEncoding.Encode(r.buf[:], r.in[:n])
		r.out = r.buf[:base64.StdEncoding.EncodedLen(n)]
	}
	n := copy(p, r.out)
	r.out = r.out[n:]
	return n, nil
}
