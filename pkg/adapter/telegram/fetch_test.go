// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/telegram/telegramtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestFetchMedia(t *testing.T) {
	h := newHarness(t)
	data := bytes.Repeat([]byte("png!"), 1000)
	h.fake.AddFile("photo1", telegramtest.File{Data: data})
	h.fake.AddFile("big", telegramtest.File{Data: []byte("x"), Size: telegramtest.MaxDownload + 1})
	h.fake.AddFile("gone", telegramtest.File{Data: []byte("x")})
	h.fake.ExpireFile("gone")
	msg := &message.Inbound{Platform: "tg"}
	ctx := context.Background()

	body, size, err := h.a.FetchMedia(ctx, msg, &message.Attachment{Kind: message.MediaImage, Ref: "photo1"})
	if err != nil {
		t.Fatalf("FetchMedia: %v", err)
	}
	got, err := io.ReadAll(body)
	body.Close()
	if err != nil || !bytes.Equal(got, data) || size != int64(len(data)) {
		t.Fatalf("got %d bytes (size %d), err %v; want %d", len(got), size, err, len(data))
	}

	for _, tc := range []struct {
		name string
		att  message.Attachment
		want error
	}{
		{"too big for getFile", message.Attachment{Kind: message.MediaFile, Ref: "big"}, adapter.ErrTooLarge},
		{"declared too big, no call", message.Attachment{Kind: message.MediaFile, Ref: "photo1", Size: 21 << 20}, adapter.ErrTooLarge},
		{"expired file_id", message.Attachment{Kind: message.MediaFile, Ref: "gone"}, adapter.ErrPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := h.a.FetchMedia(ctx, msg, &tc.att)
			if !errors.Is(err, tc.want) || adapter.Retryable(err) {
				t.Fatalf("err %v, want %v, not retryable", err, tc.want)
			}
			if strings.Contains(err.Error(), h.fake.Token) {
				t.Fatalf("token in error: %v", err)
			}
		})
	}

	t.Run("5xx is temporary", func(t *testing.T) {
		h.fake.Script("getFile", telegramtest.Error(502, "Bad Gateway"))
		_, _, err := h.a.FetchMedia(ctx, msg, &message.Attachment{Kind: message.MediaImage, Ref: "photo1"})
		if !errors.Is(err, adapter.ErrTemporary) {
			t.Fatalf("err %v, want ErrTemporary", err)
		}
	})
}

func TestFetchMediaDripHonoursContext(t *testing.T) {
	h := newHarness(t)
	h.fake.AddFile("slow", telegramtest.File{Data: bytes.Repeat([]byte("a"), 1000), Drip: time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	body, _, err := h.a.FetchMedia(ctx, &message.Inbound{}, &message.Attachment{Kind: message.MediaFile, Ref: "slow"})
	if err != nil {
		t.Fatalf("FetchMedia: %v", err)
	}
	defer body.Close()
	buf := make([]byte, 1)
	if _, err := io.ReadFull(body, buf); err != nil {
		t.Fatalf("first byte: %v", err)
	}
	cancel()
	done := make(chan error, 1)
	go func() { _, err := io.ReadAll(body); done <- err }()
	select {
	case err := <-done:
		if err == nil || strings.Contains(err.Error(), h.fake.Token) {
			t.Fatalf("read after cancel: %v", err)
		}
	case <-time.After(wait):
		t.Fatal("read did not end after the context was cancelled")
	}
}
