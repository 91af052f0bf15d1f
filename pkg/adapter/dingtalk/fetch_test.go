// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/message"
)

func fetch(t *testing.T, a *Adapter, ctx context.Context, code string) ([]byte, error) {
	t.Helper()
	in := &message.Inbound{Platform: TypeName, Meta: map[string]string{MetaRobotCode: dingtalktest.DefaultClientID}}
	body, _, err := a.FetchMedia(ctx, in, &message.Attachment{Kind: message.MediaImage, Ref: code})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

func TestFetchMedia(t *testing.T) {
	h := newHarness(t, nil)
	code := h.srv.AddFile([]byte("\x89PNG picture"))
	b, err := fetch(t, h.a, t.Context(), code)
	if err != nil || string(b) != "\x89PNG picture" {
		t.Fatalf("fetch = %q, %v", b, err)
	}
	// A token DingTalk rejects early is replaced once.
	h.srv.ExpireTokens()
	if b, err := fetch(t, h.a, t.Context(), code); err != nil || len(b) == 0 {
		t.Fatalf("fetch after the token expired = %q, %v", b, err)
	}
	if n := h.srv.TokenRequests(); n != 2 {
		t.Errorf("%d token requests, want 2", n)
	}
}

func TestFetchMediaFailures(t *testing.T) {
	h := newHarness(t, nil)
	t.Run("expired downloadCode is permanent", func(t *testing.T) {
		code := h.srv.AddFile([]byte("x"))
		h.srv.ExpireFile(code)
		_, err := fetch(t, h.a, t.Context(), code)
		if !errors.Is(err, adapter.ErrPermanent) || adapter.Retryable(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("slow body ends with ctx", func(t *testing.T) {
		h.srv.SlowDownloads(time.Hour)
		defer h.srv.SlowDownloads(0)
		adaptertest.FetchEndsWithContext(t, func(ctx context.Context) error {
			_, err := fetch(t, h.a, ctx, h.srv.AddFile([]byte("slow bytes")))
			return err
		})
	})
	t.Run("expired link is permanent", func(t *testing.T) {
		h.srv.ExpireLinks()
		_, err := fetch(t, h.a, t.Context(), h.srv.AddFile([]byte("x")))
		if !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("unreachable is temporary", func(t *testing.T) {
		h.srv.Close()
		_, err := fetch(t, h.a, t.Context(), "dcany")
		if !errors.Is(err, adapter.ErrTemporary) {
			t.Fatalf("err %v", err)
		}
	})
}
