// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/message"
)

func fetch(ctx context.Context, a *Adapter, id string) ([]byte, error) {
	body, _, err := a.FetchMedia(ctx, &message.Inbound{Platform: TypeName}, &message.Attachment{Kind: message.MediaImage, Ref: id})
	if err != nil {
		return nil, err
	}
	defer body.Close()
	return io.ReadAll(body)
}

func TestFetchMedia(t *testing.T) {
	h := newHarness(t, nil)
	// A JSON file is a file: it comes as an attachment.
	id := h.fake.AddMedia([]byte(`{"errcode":40007}`), "application/json", "data.json")
	b, err := fetch(t.Context(), h.a, id)
	if err != nil || string(b) != `{"errcode":40007}` {
		t.Fatalf("fetch = %q, %v", b, err)
	}
	// An expired token is renewed once.
	h.fake.ExpireTokens()
	if b, err := fetch(t.Context(), h.a, id); err != nil || len(b) == 0 {
		t.Fatalf("fetch after the token expired = %q, %v", b, err)
	}
	if n := h.fake.Issued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}
}

func TestFetchMediaFailures(t *testing.T) {
	h := newHarness(t, nil)
	t.Run("expired media id is permanent", func(t *testing.T) {
		id := h.fake.AddMedia([]byte("jpeg bytes"), "image/jpeg", "p.jpg")
		h.fake.ExpireMedia(id)
		_, err := fetch(t.Context(), h.a, id)
		if !errors.Is(err, adapter.ErrPermanent) || adapter.Retryable(err) || !strings.Contains(err.Error(), "40007") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("busy is temporary", func(t *testing.T) {
		h.fake.Inject(wecomtest.MediaGet, fakeserver.Reject(200).WithCode("-1").Times(1))
		_, err := fetch(t.Context(), h.a, h.fake.AddMedia([]byte("jpeg bytes"), "image/jpeg", "p.jpg"))
		if !errors.Is(err, adapter.ErrTemporary) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("5xx is temporary", func(t *testing.T) {
		h.fake.Inject(wecomtest.MediaGet, fakeserver.Reject(502).Times(1))
		_, err := fetch(t.Context(), h.a, h.fake.AddMedia([]byte("jpeg bytes"), "image/jpeg", "p.jpg"))
		if !errors.Is(err, adapter.ErrTemporary) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("slow body ends with ctx", func(t *testing.T) {
		h.fake.SlowMedia(time.Hour)
		defer h.fake.SlowMedia(0)
		adaptertest.FetchEndsWithContext(t, func(ctx context.Context) error {
			_, err := fetch(ctx, h.a, h.fake.AddMedia([]byte("slow bytes"), "image/jpeg", "p.jpg"))
			return err
		})
	})
}
