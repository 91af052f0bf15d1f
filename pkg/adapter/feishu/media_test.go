// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/message"
)

var _ adapter.MediaFetcher = (*Adapter)(nil)

func imageAttachment(msgID, key string) (*message.Inbound, *message.Attachment) {
	in := &message.Inbound{MessageID: msgID}
	att := resource(msgID, message.MediaImage, key, "image", "", 0)
	return in, &att
}

// TestFetchMedia: the resource API serves the bytes of a message's key with
// the tenant token; a rejected token is refreshed once.
func TestFetchMedia(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	png := append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{7}, 1000)...)
	h.fake.AddResource("om_1", "img_1", "image", feishutest.Resource{Data: png, ContentType: "image/png"})
	h.fake.AddResource("om_1", "file_1", "file", feishutest.Resource{Data: []byte("%PDF-1.4"), ContentType: "application/pdf"})
	fetch := func(in *message.Inbound, att *message.Attachment) []byte {
		t.Helper()
		body, size, err := h.a.FetchMedia(context.Background(), in, att)
		if err != nil {
			t.Fatalf("FetchMedia(%s): %v", att.Ref, err)
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatal(err)
		}
		if size != int64(len(b)) {
			t.Errorf("size %d, body %d bytes", size, len(b))
		}
		return b
	}
	in, att := imageAttachment("om_1", "img_1")
	if got := fetch(in, att); !bytes.Equal(got, png) {
		t.Errorf("image: %d bytes, want %d", len(got), len(png))
	}
	h.fake.InvalidateTokens()
	file := resource("om_1", message.MediaFile, "file_1", "file", "a.pdf", 0)
	if got := fetch(in, &file); string(got) != "%PDF-1.4" {
		t.Errorf("file: %q", got)
	}
	if n := h.fake.TokensIssued(); n != 2 {
		t.Errorf("tokens issued = %d, want 2 (one refresh after the rejection)", n)
	}
}

// TestFetchMediaErrors: each failure is classified for the core's retries.
func TestFetchMediaErrors(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.fake.AddResource("om_1", "img_1", "image", feishutest.Resource{Data: []byte("x"), ContentType: "image/png"})
	tests := []struct {
		name string
		fail *feishutest.Failure
		key  string
		want error
	}{
		{name: "unknown key", key: "img_gone", want: adapter.ErrPermanent},
		{name: "server error", key: "img_1", fail: &feishutest.Failure{Status: 500, Code: 1500, Msg: "internal error"}, want: adapter.ErrTemporary},
		{name: "rate limited", key: "img_1", fail: &feishutest.Failure{Status: 429, Code: codeRateLimited, Msg: "limit", RateLimitReset: "2"}, want: adapter.ErrRateLimited},
		{name: "refused", key: "img_1", fail: &feishutest.Failure{Status: 400, Code: 234043, Msg: "unsupported message"}, want: adapter.ErrPermanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.fail != nil {
				h.fake.FailNext(*tt.fail)
			}
			in, att := imageAttachment("om_1", tt.key)
			body, _, err := h.a.FetchMedia(context.Background(), in, att)
			if body != nil {
				body.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
	h.fake.AddResource("om_1", "file_big", "file", feishutest.Resource{Data: []byte("x"), ContentType: "video/mp4", Announce: maxResourceBytes + 1})
	big := resource("om_1", message.MediaVideo, "file_big", "file", "v.mp4", 0)
	if body, _, err := h.a.FetchMedia(context.Background(), &message.Inbound{MessageID: "om_1"}, &big); !errors.Is(err, adapter.ErrTooLarge) {
		if body != nil {
			body.Close()
		}
		t.Errorf("over the API's 100 MB: %v, want ErrTooLarge", err)
	}
	in, att := imageAttachment("", "img_1")
	att.Meta = nil
	if _, _, err := h.a.FetchMedia(context.Background(), in, att); !errors.Is(err, adapter.ErrPermanent) {
		t.Errorf("without a message id: %v", err)
	}
}

// TestFetchMediaSlowBodyEndsWithContext: a body that drips ends when the
// caller's context does.
func TestFetchMediaSlowBodyEndsWithContext(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.fake.AddResource("om_1", "img_1", "image", feishutest.Resource{Data: bytes.Repeat([]byte{1}, 1<<20), ContentType: "image/png", Drip: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	in, att := imageAttachment("om_1", "img_1")
	body, _, err := h.a.FetchMedia(ctx, in, att)
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	if _, err := io.ReadFull(body, make([]byte, 2)); err != nil {
		t.Fatalf("first bytes: %v", err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, body); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the body did not end with its context")
	}
}
