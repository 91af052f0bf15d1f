// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/discord/discordtest"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
	"github.com/heraldgw/herald/pkg/message"
)

func TestSendMedia(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	png := []byte("\x89PNG\r\n\x1a\nimage")
	sum := sha256.Sum256(png)
	out := reply("", 2)
	out.Media = adaptertest.MediaFile(t, message.MediaImage, "a.png", "image/png", png, 0)
	out.Media.Caption = "look @everyone"
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	msgs := srv.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	m := msgs[0]
	if res.MessageID != m.ID || m.Content != "look @everyone" || m.ReplyTo != "700" || len(m.Attachments) != 1 {
		t.Fatalf("message %+v", m)
	}
	if a := m.Attachments[0]; a.Field != "files[0]" || a.Name != "a.png" || a.ContentType != "image/png" || a.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("attachment %+v", a)
	}
	if want := nonce(out.IdempotencyKey); m.Nonce != want || !m.EnforceNonce {
		t.Errorf("nonce %q enforce %v, want %q", m.Nonce, m.EnforceNonce, want)
	}
	requireNoPings(t, m)
	// A retry with the same key is deduplicated by the nonce, as for text.
	if res2, err := h.a.Send(t.Context(), out); err != nil || res2.MessageID != res.MessageID || len(srv.Messages()) != 1 {
		t.Fatalf("retry: %+v, %v, %d messages", res2, err, len(srv.Messages()))
	}
	// No caption: an attachment-only message.
	out = reply("", 3)
	out.Media = adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)
	if _, err := h.a.Send(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if m := srv.Messages()[1]; m.Content != "" || len(m.Attachments) != 1 || m.Attachments[0].Name != "r.pdf" {
		t.Fatalf("message %+v", m)
	}
	if !h.a.SendsMedia(message.MediaVoice) || h.a.SendsMedia("sticker") {
		t.Error("SendsMedia")
	}
}

func TestSendMediaFailures(t *testing.T) {
	leakCheck(t)
	srv := discordtest.New(t, discordtest.Options{})
	h := newHarness(t, srv)
	send := func(ctx context.Context, m *message.OutboundMedia) error {
		out := reply("", 1)
		out.Media = m
		_, err := h.a.Send(ctx, out)
		return err
	}
	t.Run("over the limit is refused before uploading", func(t *testing.T) {
		n := len(srv.Requests())
		err := send(t.Context(), adaptertest.MediaFile(t, message.MediaFile, "big.bin", "application/octet-stream", nil, MaxUpload+1))
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) || len(srv.Requests()) != n {
			t.Fatalf("err %v, %d requests", err, len(srv.Requests())-n)
		}
	})
	t.Run("413 40005", func(t *testing.T) {
		// The file fits, the whole request does not.
		err := send(t.Context(), adaptertest.MediaFile(t, message.MediaFile, "edge.bin", "application/octet-stream", nil, MaxUpload))
		if !errors.Is(err, adapter.ErrTooLarge) || !strings.Contains(err.Error(), "40005") {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("lost answer is ambiguous and ctx bounds it", func(t *testing.T) {
		srv.Inject(discordtest.Messages, fakeserver.Blackhole().Times(1))
		ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
		defer cancel()
		err := send(ctx, adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0))
		if !errors.Is(err, adapter.ErrAmbiguous) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("missing file", func(t *testing.T) {
		m := adaptertest.MediaFile(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)
		os.Remove(m.Path)
		if err := send(t.Context(), m); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
}
