// SPDX-License-Identifier: Apache-2.0

package matrix

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
	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
	"github.com/heraldgw/herald/pkg/message"
)

func fetchAll(t *testing.T, a *Adapter, ref string) ([]byte, int64, error) {
	t.Helper()
	body, size, err := a.FetchMedia(t.Context(), &message.Inbound{}, &message.Attachment{Kind: message.MediaFile, Ref: ref})
	if err != nil {
		return nil, 0, err
	}
	defer body.Close()
	b, err := io.ReadAll(body)
	return b, size, err
}

func TestFetchMedia(t *testing.T) {
	h := newHarness(t)
	data := bytes.Repeat([]byte("png!"), 500)
	uri := h.fake.AddMedia(matrixtest.Media{ContentType: "image/png", Filename: "a.png", Data: data})
	b, size, err := fetchAll(t, h.a, uri)
	if err != nil || !bytes.Equal(b, data) || size != int64(len(data)) {
		t.Fatalf("fetch: %d bytes, size %d, %v", len(b), size, err)
	}
	if n, legacy := h.fake.MediaRequests("download"), h.fake.MediaRequests("legacy download"); n != 1 || legacy != 0 {
		t.Fatalf("%d authenticated, %d legacy downloads", n, legacy)
	}
	// A homeserver before v1.11: the legacy endpoint.
	h.fake.LegacyMedia(true)
	if b, _, err := fetchAll(t, h.a, uri); err != nil || !bytes.Equal(b, data) {
		t.Fatalf("legacy fetch: %d bytes, %v", len(b), err)
	}
	if n := h.fake.MediaRequests("legacy download"); n != 1 {
		t.Fatalf("%d legacy downloads", n)
	}
}

func TestFetchMediaFailures(t *testing.T) {
	h := newHarness(t)
	uri := h.fake.AddMedia(matrixtest.Media{ContentType: "application/pdf", Data: []byte("%PDF")})
	t.Run("rate limited", func(t *testing.T) {
		h.fake.RateLimit("download", 1500)
		_, _, err := fetchAll(t, h.a, uri)
		if d, ok := adapter.RetryAfter(err); !ok || d != 1500*time.Millisecond || !adapter.Retryable(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("remote media too large", func(t *testing.T) {
		big := h.fake.AddMedia(matrixtest.Media{TooLarge: true})
		_, _, err := fetchAll(t, h.a, big)
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("deleted is permanent", func(t *testing.T) {
		h.fake.DeleteMedia(uri)
		_, _, err := fetchAll(t, h.a, uri)
		if !errors.Is(err, adapter.ErrPermanent) || !strings.Contains(err.Error(), "M_NOT_FOUND") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("not an mxc URI is never fetched", func(t *testing.T) {
		n := h.fake.MediaRequests("download")
		_, _, err := fetchAll(t, h.a, "mxc://fake.test/../../_matrix/client/v3/account/whoami")
		if !errors.Is(err, adapter.ErrPermanent) || h.fake.MediaRequests("download") != n {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("expired token", func(t *testing.T) {
		h.fake.Expire()
		if _, _, err := fetchAll(t, h.a, uri); !errors.Is(err, adapter.ErrUnauthorized) {
			t.Fatalf("err %v", err)
		}
	})
}

// A body that trickles is cut when ctx ends.
func TestFetchMediaDripHonoursContext(t *testing.T) {
	h := newHarness(t)
	uri := h.fake.AddMedia(matrixtest.Media{ContentType: "audio/ogg", Data: make([]byte, 1000), Drip: time.Second})
	ctx, cancel := context.WithCancel(t.Context())
	body, _, err := h.a.FetchMedia(ctx, &message.Inbound{}, &message.Attachment{Ref: uri})
	if err != nil {
		t.Fatal(err)
	}
	defer body.Close()
	adaptertest.ReadEndsOnCancel(t, body, cancel, wait)
}
