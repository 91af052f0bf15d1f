// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/message"
)

// mediaReply is a reply part to ann carrying data as a file.
func mediaReply(t *testing.T, kind message.MediaKind, name, mime string, data []byte, size int64) *message.Outbound {
	t.Helper()
	m := adaptertest.MediaFile(t, kind, name, mime, data, size)
	if data != nil {
		sum := sha256.Sum256(data)
		m.SHA256 = hex.EncodeToString(sum[:])
	}
	return &message.Outbound{ChatID: ann, ReplyTo: "wamid.in", IdempotencyKey: "k-" + name, Media: m}
}

func TestSendMedia(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "send me files"}))
	png := []byte("\x89PNG\r\n\x1a\nimage")
	out := mediaReply(t, message.MediaImage, "a.png", "image/png", png, 0)
	out.Media.Caption = "look @49155"
	res, err := h.a.Send(t.Context(), out)
	if err != nil {
		t.Fatal(err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 1 {
		t.Fatalf("%d uploads, %d messages", len(ups), len(sent))
	}
	if u := ups[0]; u.Type != "image/png" || u.MIME != "image/png" || u.Name != "a.png" || u.SHA256 != out.Media.SHA256 {
		t.Fatalf("upload %+v", u)
	}
	s := sent[0]
	if res.MessageID != s.ID || s.Type != "image" || s.MediaID != ups[0].ID || s.ReplyTo != "wamid.in" ||
		s.Caption != "look @\u206049155" || s.Filename != "" {
		t.Fatalf("message %+v", s)
	}
	// A document keeps its name; audio goes without a caption.
	doc := mediaReply(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF-1.4"), 0)
	if _, err := h.a.Send(t.Context(), doc); err != nil {
		t.Fatal(err)
	}
	voice := mediaReply(t, message.MediaVoice, "v.ogg", "audio/ogg", []byte("OggS"), 0)
	if _, err := h.a.Send(t.Context(), voice); err != nil {
		t.Fatal(err)
	}
	// Audio with a caption is a document: the caption is not lost.
	capAudio := mediaReply(t, message.MediaAudio, "s.mp3", "audio/mpeg", []byte("ID3"), 0)
	capAudio.Media.Caption = "a song"
	if _, err := h.a.Send(t.Context(), capAudio); err != nil {
		t.Fatal(err)
	}
	sent = h.fake.Sent()
	if len(sent) != 4 || sent[1].Type != "document" || sent[1].Filename != "r.pdf" ||
		sent[2].Type != "audio" || sent[2].Caption != "" ||
		sent[3].Type != "document" || sent[3].Caption != "a song" || sent[3].Filename != "s.mp3" {
		t.Fatalf("sent %+v", sent)
	}
}

func TestSendMediaRetryUploadsOnce(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	out := mediaReply(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF-1.4 report"), 0)
	// The upload succeeds, the message call fails temporarily: the resend
	// reuses the media id and does not upload again.
	h.checked()
	h.fake.Script(whatsapptest.Pass(), whatsapptest.GraphError(503, 131000, "Something went wrong"))
	if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrTemporary) {
		t.Fatalf("first send: %v, want ErrTemporary", err)
	}
	if n, m := len(h.fake.Uploads()), len(h.fake.Sent()); n != 1 || m != 0 {
		t.Fatalf("after the failed try: %d uploads, %d messages", n, m)
	}
	if _, err := h.a.Send(t.Context(), out); err != nil {
		t.Fatalf("resend: %v", err)
	}
	ups, sent := h.fake.Uploads(), h.fake.Sent()
	if len(ups) != 1 || len(sent) != 1 || sent[0].MediaID != ups[0].ID {
		t.Fatalf("%d uploads, messages %+v: want one upload, one message with its id", len(ups), sent)
	}
}

func TestSendMediaLostAnswerIsAmbiguous(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.RequestTimeout = 300 * time.Millisecond })
	h.start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	out := mediaReply(t, message.MediaImage, "a.png", "image/png", []byte("\x89PNG"), 0)
	h.checked()
	h.fake.Script(whatsapptest.Pass(), whatsapptest.Blackhole())
	if _, err := h.a.Send(t.Context(), out); !errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("message call without answer: %v, want ErrAmbiguous", err)
	}
	// A lost upload answer is only temporary: the user saw nothing.
	other := mediaReply(t, message.MediaImage, "b.png", "image/png", []byte("\x89PNG b"), 0)
	h.checked()
	h.fake.Script(whatsapptest.Blackhole())
	if _, err := h.a.Send(t.Context(), other); !errors.Is(err, adapter.ErrTemporary) || errors.Is(err, adapter.ErrAmbiguous) {
		t.Fatalf("upload without answer: %v, want ErrTemporary", err)
	}
}

func TestSendMediaTooLarge(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	// Over the document limit: refused before any upload.
	big := mediaReply(t, message.MediaFile, "big.bin", "application/octet-stream", nil, maxDocumentUpload+1)
	if _, err := h.a.Send(t.Context(), big); !errors.Is(err, adapter.ErrTooLarge) || !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("over 100 MB: %v, want ErrTooLarge", err)
	}
	// A PNG over 5 MB goes as a document instead of failing as an image.
	png := mediaReply(t, message.MediaImage, "huge.png", "image/png", nil, maxImageUpload+1)
	if _, err := h.a.Send(t.Context(), png); err != nil {
		t.Fatalf("large png: %v", err)
	}
	if s := h.fake.Sent(); len(s) != 1 || s[0].Type != "document" || s[0].Filename != "huge.png" {
		t.Fatalf("sent %+v", s)
	}
	// WhatsApp's own 413: too large.
	h.checked()
	h.fake.Script(whatsapptest.Failure{Status: 413, Code: 131053, Message: "(#131053) Media upload error: file is too large"})
	doc := mediaReply(t, message.MediaFile, "r.pdf", "application/pdf", []byte("%PDF"), 0)
	if _, err := h.a.Send(t.Context(), doc); !errors.Is(err, adapter.ErrTooLarge) {
		t.Fatalf("413: %v, want ErrTooLarge", err)
	}
	if n := len(h.fake.Uploads()); n != 1 {
		t.Fatalf("%d uploads, want the large png only", n)
	}
}

func TestSendMediaWindow(t *testing.T) {
	h := newHarness(t, "", func(c *Config) { c.TemplateName = "hello_world" })
	h.start()
	h.deliver(h.fake.Text(whatsapptest.Message{ID: "wamid.in", From: ann, Text: "hi"}))
	h.a.now = func() time.Time { return time.Now().Add(Window + time.Minute) }
	out := mediaReply(t, message.MediaImage, "a.png", "image/png", []byte("\x89PNG"), 0)
	out.ReplyTo = ""
	if _, err := h.a.Send(t.Context(), out); !errors.Is(err, ErrOutsideWindow) || !errors.Is(err, adapter.ErrPermanent) {
		t.Fatalf("file push outside the window: %v, want ErrOutsideWindow (no template carries a file)", err)
	}
	if len(h.fake.Uploads()) != 0 || len(h.fake.Sent()) != 0 {
		t.Fatal("uploaded or sent outside the window")
	}
}

func TestCaptionText(t *testing.T) {
	if got := captionText(" mark ", " alt "); got != "mark\nalt" {
		t.Errorf("captionText = %q", got)
	}
	long := captionText("", strings.Repeat("é", MaxCaptionLen+5))
	if n := len([]rune(long)); n != MaxCaptionLen || !strings.HasSuffix(long, "…") {
		t.Errorf("long caption: %d characters", n)
	}
}

// checked waits for the token check at start, so that a script answers
// the calls of the test.
func (h *harness) checked() {
	h.t.Helper()
	h.fake.Wait(h.t, wait, "token check", func() bool { return h.fake.Checks() >= 1 })
}
