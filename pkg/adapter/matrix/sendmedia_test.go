// SPDX-License-Identifier: Apache-2.0

package matrix

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
	"github.com/heraldgw/herald/pkg/message"
)

func mediaPart(t *testing.T, key string, kind message.MediaKind, name, mime string, data []byte) *message.Outbound {
	t.Helper()
	return &message.Outbound{ChatID: room, ReplyTo: "$q", RecipientID: ann, IdempotencyKey: key,
		Media: adaptertest.MediaFile(t, kind, name, mime, data, 0)}
}

func TestSendMedia(t *testing.T) {
	h := newHarness(t)
	png := []byte("\x89PNG\r\n\x1a\nimage")
	sum := sha256.Sum256(png)
	out := mediaPart(t, "key-img", message.MediaImage, "a.png", "image/png", png)
	out.Media.Caption = "look @room"
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 1 {
		t.Fatalf("%d uploads, %d sent", len(ups), len(sent))
	}
	if u := ups[0]; u.Filename != "a.png" || u.ContentType != "image/png" || u.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload %+v", u)
	}
	s := sent[0]
	c := s.Content
	if s.EventID != res.MessageID || s.TxnID != "key-img" || c["msgtype"] != "m.image" || c["url"] != ups[0].URI ||
		c["filename"] != "a.png" || s.Body() != "look @\u2060room" {
		t.Fatalf("sent %+v", s)
	}
	if info, _ := c["info"].(map[string]any); info["mimetype"] != "image/png" || info["size"] != float64(len(png)) {
		t.Fatalf("info %v", c["info"])
	}
	if _, _, reply := s.Relation(); reply != "$q" {
		t.Fatalf("relation %v", c["m.relates_to"])
	}
	// No caption: the body is the file name; a voice note is an m.audio
	// with the voice marker.
	out = mediaPart(t, "key-voice", message.MediaVoice, "v.ogg", "audio/ogg", []byte("OggS"))
	if _, err := h.a.Send(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	c = h.fake.Sent()[1].Content
	if c["msgtype"] != "m.audio" || c["body"] != "v.ogg" || c[voiceKey] == nil {
		t.Fatalf("voice content %v", c)
	}
	if !h.a.SendsMedia(message.MediaVideo) || h.a.SendsMedia("sticker") {
		t.Error("SendsMedia")
	}
}

// A message that fails after its file was uploaded is retried with the
// same mxc:// URI: one upload, one message. A repeat after success is
// deduplicated by the transaction id, as for text.
func TestSendMediaRetryUploadsOnce(t *testing.T) {
	h := newHarness(t)
	out := mediaPart(t, "key-1", message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
	h.fake.RateLimit("send", 10)
	_, err := h.a.Send(t.Context(), out)
	if !errors.Is(err, adapter.ErrRateLimited) || len(h.fake.Uploads()) != 1 || len(h.fake.Sent()) != 0 {
		t.Fatalf("first try: %v, %d uploads, %d sent", err, len(h.fake.Uploads()), len(h.fake.Sent()))
	}
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 1 || sent[0].EventID != res.MessageID || sent[0].Content["url"] != ups[0].URI {
		t.Fatalf("retry: %d uploads, sent %+v", len(ups), sent)
	}
	// The message's answer lost: the retry under the same transaction
	// id gets the same event, and uploads nothing.
	out = mediaPart(t, "key-2", message.MediaFile, "s.pdf", "application/pdf", []byte("%PDF-2"))
	h.fake.HoldSends(true)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	_, err = h.a.Send(ctx, out)
	cancel()
	h.fake.HoldSends(false)
	if !errors.Is(err, adapter.ErrAmbiguous) && !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("held send: %v", err)
	}
	res, err = h.a.Send(t.Context(), out)
	ups, sent = h.fake.Uploads(), h.fake.Sent()
	if err != nil || len(ups) != 2 || len(sent) != 2 || sent[1].EventID != res.MessageID || h.fake.Puts("key-2") != 2 {
		t.Fatalf("after the lost answer: %v, %d uploads, %d sent, %d puts", err, len(ups), len(sent), h.fake.Puts("key-2"))
	}
}

func TestSendMediaFailures(t *testing.T) {
	h := newHarness(t)
	t.Run("over m.upload.size is refused before uploading", func(t *testing.T) {
		h.fake.SetMaxUpload(1 << 10)
		out := mediaPart(t, "k1", message.MediaFile, "big.bin", "application/octet-stream", nil)
		out.Media = adaptertest.MediaFile(t, message.MediaFile, "big.bin", "application/octet-stream", nil, 4<<10)
		_, err := h.a.Send(t.Context(), out)
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) || h.fake.MediaRequests("upload") != 0 {
			t.Fatalf("err %v, %d upload calls", err, h.fake.MediaRequests("upload"))
		}
	})
	t.Run("413 M_TOO_LARGE", func(t *testing.T) {
		// The limit was learnt as 1 KiB; the homeserver lowers it.
		h.fake.SetMaxUpload(100)
		out := mediaPart(t, "k2", message.MediaFile, "mid.bin", "application/octet-stream", make([]byte, 500))
		_, err := h.a.Send(t.Context(), out)
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) || !strings.Contains(err.Error(), "M_TOO_LARGE") {
			t.Fatalf("err %v", err)
		}
		if len(h.fake.Uploads()) != 0 || len(h.fake.Sent()) != 0 {
			t.Fatalf("%d uploads, %d sent", len(h.fake.Uploads()), len(h.fake.Sent()))
		}
	})
	t.Run("missing file is permanent", func(t *testing.T) {
		out := mediaPart(t, "k3", message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
		os.Remove(out.Media.Path)
		if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("an upload rate limited waits", func(t *testing.T) {
		h.fake.SetMaxUpload(1 << 20)
		h.fake.RateLimit("upload", 2000)
		out := mediaPart(t, "k4", message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
		_, err := h.a.Send(t.Context(), out)
		if d, ok := adapter.RetryAfter(err); !ok || d != 2*time.Second {
			t.Fatalf("err %v", err)
		}
	})
}

// A homeserver before v1.11 has no /_matrix/client/v1/media/config: the
// limit comes from /_matrix/media/v3/config.
func TestSendMediaLegacyHomeserver(t *testing.T) {
	h := newHarness(t)
	h.fake.LegacyMedia(true)
	h.fake.SetMaxUpload(10)
	out := mediaPart(t, "k", message.MediaImage, "a.png", "image/png", make([]byte, 20))
	if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrTooLarge) || h.fake.MediaRequests("legacy config") != 1 || h.fake.MediaRequests("upload") != 0 {
		t.Fatalf("send: %v, %d legacy config calls, %d uploads", err, h.fake.MediaRequests("legacy config"), h.fake.MediaRequests("upload"))
	}
	out = mediaPart(t, "k2", message.MediaImage, "b.png", "image/png", []byte("\x89PNG"))
	if _, err := h.a.Send(t.Context(), out); err != nil || len(h.fake.Uploads()) != 1 {
		t.Fatalf("send: %v, %d uploads", err, len(h.fake.Uploads()))
	}
}

// A homeserver with no media config endpoint at all is asked once; the
// uploads go ahead and its answer says whether a file is too large.
func TestSendMediaWithoutUploadLimit(t *testing.T) {
	h := newHarness(t)
	h.fake.HideMediaConfig(true)
	for i, key := range []string{"k1", "k2"} {
		out := mediaPart(t, key, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
		if _, err := h.a.Send(t.Context(), out); err != nil || len(h.fake.Uploads()) != i+1 {
			t.Fatalf("send %d: %v, %d uploads", i, err, len(h.fake.Uploads()))
		}
	}
	if n, legacy := h.fake.MediaRequests("config"), h.fake.MediaRequests("legacy config"); n != 1 || legacy != 1 {
		t.Fatalf("config asked %d and %d times, want once each", n, legacy)
	}
}
