// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

// pushFile makes the daemon receive a and returns the attachment herald
// stores for it.
func pushFile(t *testing.T, h *harness, a signaltest.Attachment) (*message.Inbound, *message.Attachment) {
	t.Helper()
	e := h.fake.Message("")
	e.Attachments = []signaltest.Attachment{a}
	n := len(h.Inbox.Messages()) // before the push, which may be stored at once
	h.fake.Push(e)
	m := h.Inbox.WaitN(t, n+1, wait)
	in := m[len(m)-1]
	if len(in.Attachments) != 1 {
		t.Fatalf("message %+v", in)
	}
	return in, &in.Attachments[0]
}

func readAll(t *testing.T, h *harness, ctx context.Context, in *message.Inbound, att *message.Attachment) ([]byte, int64, error) {
	t.Helper()
	body, size, err := h.a.FetchMedia(ctx, in, att)
	if err != nil {
		return nil, 0, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return b, size, err
}

func TestFetchMedia(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	// Every byte value, so that base64 uses "+" and "/".
	data := make([]byte, 70_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	in, att := pushFile(t, h, signaltest.Attachment{ContentType: "application/octet-stream", ID: "f1.bin", Data: data})
	b, size, err := readAll(t, h, t.Context(), in, att)
	if err != nil || !bytes.Equal(b, data) || size != int64(len(data)) {
		t.Fatalf("fetch: %d bytes, size %d, %v", len(b), size, err)
	}
	// In a group, the group id names where it was received.
	g := h.fake.Message("")
	g.GroupID = groupID
	g.Attachments = []signaltest.Attachment{{ContentType: "image/png", ID: "g1.png", Data: []byte("png")}}
	h.fake.Push(g)
	msgs := h.Inbox.WaitN(t, 2, wait)
	gm := msgs[1]
	if b, _, err := readAll(t, h, t.Context(), gm, &gm.Attachments[0]); err != nil || string(b) != "png" {
		t.Fatalf("group fetch: %q %v", b, err)
	}
}

func TestFetchMediaErrors(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	in, att := pushFile(t, h, signaltest.Attachment{ContentType: "image/png", ID: "gone.png", Data: []byte("png")})
	// The daemon no longer has the file: permanent.
	h.fake.DeleteAttachment("gone.png")
	if _, _, err := readAll(t, h, t.Context(), in, att); !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "Could not find") {
		t.Fatalf("deleted: %v, want ErrPermanent", err)
	}
	// Declared over 100 MiB: too large, no call.
	big := *att
	big.Size = maxAttachment + 1
	before := h.fake.Fetches()
	if _, _, err := readAll(t, h, t.Context(), in, &big); !errors.Is(err, adapter.ErrTooLarge) || h.fake.Fetches() != before {
		t.Fatalf("too large: %v, %d calls", err, h.fake.Fetches()-before)
	}
	// The daemon down: temporary.
	h.fake.Down()
	if _, _, err := readAll(t, h, t.Context(), in, att); !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("daemon down: %v, want ErrTemporary", err)
	}
}

func TestFetchMediaSlowBodyEndsWithContext(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	in, att := pushFile(t, h, signaltest.Attachment{ContentType: "image/png", ID: "slow.png", Data: bytes.Repeat([]byte("x"), 300), Drip: time.Hour})
	adaptertest.FetchEndsWithContext(t, func(ctx context.Context) error {
		_, _, err := readAll(t, h, ctx, in, att)
		return err
	})
}

func TestOpenData(t *testing.T) {
	for _, tc := range []struct {
		answer, want string
		err          error
	}{
		{`{"jsonrpc":"2.0","result":{"data":"aGVsbG8="},"id":"1"}`, "hello", nil},
		{`{"id":"1", "result" : { "data" : "aGVsbG8="} ,"jsonrpc":"2.0"}`, "hello", nil},
		{`{"jsonrpc":"2.0","result":{"data":"aGVs\nbG8="},"id":"1"}`, "", errors.New("any")},
		{`{"jsonrpc":"2.0","result":{"data":"Pz8\/"},"id":"1"}`, "???", nil},
		{`{"jsonrpc":"2.0","error":{"code":-1,"message":"Could not find attachment","data":null},"id":"1"}`, "", adapter.ErrPermanent},
		{`{"jsonrpc":"2.0","error":{"code":-3,"message":"x \"data\":\"eA==\""},"id":"1"}`, "", adapter.ErrAmbiguous},
		{`{"jsonrpc":"2.0","result":{},"id":"1"}`, "", adapter.ErrPermanent},
		{`{"jsonrpc":"2.0","result":{"data":"aGVs`, "", io.ErrUnexpectedEOF},
	} {
		r, err := openData(strings.NewReader(tc.answer))
		var b []byte
		if err == nil {
			b, err = io.ReadAll(r)
		}
		switch {
		case tc.err == nil && (err != nil || string(b) != tc.want):
			t.Errorf("%s: %q %v, want %q", tc.answer, b, err, tc.want)
		case tc.err != nil && err == nil:
			t.Errorf("%s: no error, want %v", tc.answer, tc.err)
		case tc.err != nil && tc.err.Error() != "any" && !errors.Is(err, tc.err):
			t.Errorf("%s: %v, want %v", tc.answer, err, tc.err)
		}
	}
}
