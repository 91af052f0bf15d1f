// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
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

func mediaReply(t *testing.T, n int, kind message.MediaKind, name, mime string, data []byte) *message.Outbound {
	out := reply("town", message.ChatChannel, "", "p1", "")
	out.IdempotencyKey = message.IdempotencyKey(TypeName, "p1", n)
	out.Media = adaptertest.MediaFile(t, kind, name, mime, data, 0)
	return out
}

func TestSendMedia(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	png := []byte("\x89PNG\r\n\x1a\nimage")
	sum := sha256.Sum256(png)
	out := mediaReply(t, 1, message.MediaImage, "a.png", "image/png", png)
	out.Media.Caption = "look @channel"
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 1 {
		t.Fatalf("%d uploads, %d posts", len(ups), len(sent))
	}
	if u := ups[0]; u.ChannelID != "town" || u.Name != "a.png" || u.ContentType != "image/png" || u.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("upload %+v", u)
	}
	p := sent[0]
	if p.ID != res.MessageID || p.RootID != "p1" || p.Message != "look @\u200bchannel" || len(p.FileIDs) != 1 || p.FileIDs[0] != ups[0].ID {
		t.Fatalf("post %+v", p)
	}
	if p.PendingPostID != out.IdempotencyKey || p.Props[keyProp] != out.IdempotencyKey {
		t.Fatalf("post keys %q %v", p.PendingPostID, p.Props)
	}
	// No caption: a post with only the file.
	out = mediaReply(t, 2, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
	if _, err := h.a.Send(t.Context(), out); err != nil {
		t.Fatal(err)
	}
	if p := h.fake.Sent()[1]; p.Message != "" || len(p.FileIDs) != 1 || p.Metadata == nil || p.Metadata.Files[0].Name != "r.pdf" {
		t.Fatalf("post %+v", p)
	}
	if !h.a.SendsMedia(message.MediaVoice) || !h.a.SendsMedia(message.MediaImage) || h.a.SendsMedia("sticker") {
		t.Error("SendsMedia")
	}
}

// A post that fails after its file was uploaded is retried with the same
// file: one upload, one post.
func TestSendMediaRetryUploadsOnce(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	out := mediaReply(t, 1, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
	h.fake.FailPosts(1)
	_, err := h.a.Send(t.Context(), out)
	if !errors.Is(err, adapter.ErrTemporary) || len(h.fake.Uploads()) != 1 || len(h.fake.Sent()) != 0 {
		t.Fatalf("first try: %v, %d uploads, %d posts", err, len(h.fake.Uploads()), len(h.fake.Sent()))
	}
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 1 || sent[0].ID != res.MessageID || sent[0].FileIDs[0] != ups[0].ID {
		t.Fatalf("retry: %d uploads, %d posts %+v", len(ups), len(sent), sent)
	}
	// A repeat after success is the server's pending_post_id window's:
	// the same post, and the file is not uploaded again either once the
	// post is found by Recover.
	if _, err := h.a.Recover(t.Context(), out, time.Now()); err != nil || len(h.fake.Uploads()) != 1 || len(h.fake.Sent()) != 1 {
		t.Fatalf("recover: %v, %d uploads, %d posts", err, len(h.fake.Uploads()), len(h.fake.Sent()))
	}
}

// A send whose post answer was lost is settled by Recover: the post and
// its file are found by the key, nothing is uploaded or posted again.
func TestRecoverMediaAfterLostAnswer(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	out := mediaReply(t, 1, message.MediaImage, "a.png", "image/png", []byte("\x89PNG"))
	h.fake.LoseAnswers(1)
	since := time.Now()
	if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("lost answer: %v", err)
	}
	h.fake.SetPendingTTL(0)
	res, err := h.a.Recover(t.Context(), out, since)
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if err != nil || len(ups) != 1 || len(sent) != 1 || res.MessageID != sent[0].ID {
		t.Fatalf("recover: %v, %d uploads, %d posts", err, len(ups), len(sent))
	}
}

func TestSendMediaFailures(t *testing.T) {
	h := newHarness(t, nil, "", nil)
	t.Run("413 over MaxFileSize is too large, not retried", func(t *testing.T) {
		h.fake.SetMaxFileSize(1 << 10)
		defer h.fake.SetMaxFileSize(100 << 20)
		out := mediaReply(t, 1, message.MediaFile, "big.bin", "application/octet-stream", nil)
		out.Media = adaptertest.MediaFile(t, message.MediaFile, "big.bin", "application/octet-stream", nil, 4<<10)
		_, err := h.a.Send(t.Context(), out)
		if !errors.Is(err, adapter.ErrTooLarge) || adapter.Retryable(err) || !strings.Contains(err.Error(), "413") {
			t.Fatalf("err %v", err)
		}
		if len(h.fake.Uploads()) != 0 || len(h.fake.Sent()) != 0 {
			t.Fatalf("%d uploads, %d posts", len(h.fake.Uploads()), len(h.fake.Sent()))
		}
	})
	t.Run("unknown channel is permanent", func(t *testing.T) {
		out := mediaReply(t, 2, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
		out.ChatID = "nowhere"
		if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("missing file is permanent", func(t *testing.T) {
		out := mediaReply(t, 3, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"))
		os.Remove(out.Media.Path)
		if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrPermanent) {
			t.Fatalf("err %v", err)
		}
	})
	t.Run("a long caption is cut to max_message_len", func(t *testing.T) {
		out := mediaReply(t, 4, message.MediaImage, "a.png", "image/png", []byte("\x89PNG"))
		out.Media.Caption = strings.Repeat("é", h.a.conf.MaxMessageLen+10)
		if _, err := h.a.Send(t.Context(), out); err != nil {
			t.Fatal(err)
		}
		sent := h.fake.Sent()
		if n := len([]rune(sent[len(sent)-1].Message)); n != h.a.conf.MaxMessageLen {
			t.Fatalf("caption of %d characters", n)
		}
	})
}
