// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"errors"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/message"
)

// fetch runs FetchMedia for the media id and reads the body.
func fetch(t *testing.T, h *harness, ctx context.Context, id string) ([]byte, int64, error) {
	t.Helper()
	att := &message.Attachment{Kind: message.MediaImage, Ref: id}
	body, size, err := h.a.FetchMedia(ctx, &message.Inbound{ChatID: ann}, att)
	if err != nil {
		return nil, 0, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return b, size, err
}

func TestFetchMedia(t *testing.T) {
	h := newHarness(t, "", nil).start()
	id := h.fake.AddMedia(whatsapptest.Media{MIME: "image/jpeg", Data: []byte("jpeg data")})
	b, size, err := fetch(t, h, t.Context(), id)
	if err != nil || string(b) != "jpeg data" || size != 9 {
		t.Fatalf("fetch: %q %d %v", b, size, err)
	}
	// Each fetch asks for a fresh URL: the one before has expired.
	h.fake.ExpireMediaURLs()
	if b, _, err := fetch(t, h, t.Context(), id); err != nil || string(b) != "jpeg data" {
		t.Fatalf("fetch after the first URL expired: %q %v", b, err)
	}
	if l, d, unauth := h.fake.MediaRequests(); l != 2 || d != 2 || unauth != 0 {
		t.Errorf("lookups %d downloads %d without token %d", l, d, unauth)
	}
}

func TestFetchMediaURLExpiredOnce(t *testing.T) {
	h := newHarness(t, "", nil).start()
	id := h.fake.AddMedia(whatsapptest.Media{MIME: "image/png", Data: []byte("png")})
	// The URL handed out is already expired (404): herald asks again once.
	h.fake.ExpireNextURL()
	if b, _, err := fetch(t, h, t.Context(), id); err != nil || string(b) != "png" {
		t.Fatalf("fetch: %q %v", b, err)
	}
	if l, d, _ := h.fake.MediaRequests(); l != 2 || d != 2 {
		t.Fatalf("lookups %d downloads %d, want 2 and 2", l, d)
	}
}

func TestFetchMediaErrors(t *testing.T) {
	h := newHarness(t, "", nil).start()
	// A media id WhatsApp no longer knows (over 7 days): permanent.
	id := h.fake.AddMedia(whatsapptest.Media{MIME: "image/png", Data: []byte("png")})
	h.fake.DeleteMedia(id)
	if _, _, err := fetch(t, h, t.Context(), id); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("deleted media: %v, want ErrPermanent", err)
	}
	// Not a media id: refused without a call.
	if _, _, err := fetch(t, h, t.Context(), "../"+whatsapptest.DefaultPhoneNumberID); !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("bad id: %v", err)
	}
	// Announced over 100 MB: too large, not downloaded.
	big := h.fake.AddMedia(whatsapptest.Media{MIME: "application/pdf", Data: []byte("x"), Size: maxInboundMedia + 1})
	if _, _, err := fetch(t, h, t.Context(), big); !errors.Is(err, adapter.ErrTooLarge) || !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("too large: %v", err)
	}
	_, downloads, _ := h.fake.MediaRequests()
	if downloads != 0 {
		t.Fatalf("%d downloads, want none", downloads)
	}
	// 5xx: temporary.
	h.checked()
	h.fake.Script(whatsapptest.GraphError(503, 2, "Service temporarily unavailable"))
	if _, _, err := fetch(t, h, t.Context(), big); !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("503: %v", err)
	}
}

func TestFetchMediaSlowBodyEndsWithContext(t *testing.T) {
	h := newHarness(t, "", nil).start()
	id := h.fake.AddMedia(whatsapptest.Media{MIME: "image/png", Data: []byte(strings.Repeat("x", 64)), Drip: time.Hour})
	adaptertest.FetchEndsWithContext(t, func(ctx context.Context) error {
		_, _, err := fetch(t, h, ctx, id)
		return err
	})
}

func TestMediaHostKeepsTokenHome(t *testing.T) {
	h := newHarness(t, "", nil)
	for ref, ok := range map[string]bool{
		"https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1": true,
		"https://evil.example/whatsapp_business/attachments/?mid=1":        false,
		"http://lookaside.fbsbx.com/x":                                     false,
		"https://fbsbx.com.evil.example/x":                                 false,
		h.fake.URL + "/whatsapp_business/attachments/?mid=1":               true,
	} {
		u, err := url.Parse(ref)
		if err != nil {
			t.Fatal(err)
		}
		if got := h.a.api.mediaHost(u); got != ok {
			t.Errorf("%s: mediaHost %v, want %v", ref, got, ok)
		}
	}
	// A URL off the hosts is refused before any request.
	if _, _, err := h.a.api.download(t.Context(), "http://127.0.0.1:1/x"); !errors.Is(err, adapter.ErrPermanent) ||
		!strings.Contains(err.Error(), "not on WhatsApp's media hosts") {
		t.Fatalf("download off the media hosts: %v", err)
	}
}
