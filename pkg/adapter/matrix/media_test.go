// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"encoding/json"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
	"github.com/heraldgw/herald/pkg/message"
)

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Media messages become attachments with their mxc:// URI and info; a
// caption (body differing from filename) is the text, a bare file name is
// not; a voice message is a voice note; stickers (their own event type,
// which the sync filter must ask for), locations and encrypted files reach
// the core as unsupported kinds.
func TestInboundMedia(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Members(room, 2)
	push := func(typ string, c map[string]any) string {
		return h.fake.Push(room, matrixtest.Event{Type: typ, Sender: ann, Content: c})
	}
	img := push("", map[string]any{"msgtype": "m.image", "body": "what is this?", "filename": "shot.png", "url": "mxc://fake.test/img1",
		"info": map[string]any{"mimetype": "image/png", "size": 1234, "w": 640, "h": 480}})
	file := push("", map[string]any{"msgtype": "m.file", "body": "report.pdf", "url": "mxc://fake.test/f1",
		"info": map[string]any{"mimetype": "application/pdf", "size": 99}})
	voice := push("", map[string]any{"msgtype": "m.audio", "body": "Voice message", "url": "mxc://fake.test/v1",
		"info": map[string]any{"mimetype": "audio/ogg", "size": 5, "duration": 2300}, "org.matrix.msc3245.voice": map[string]any{}})
	video := push("", map[string]any{"msgtype": "m.video", "body": "clip.mp4", "url": "mxc://fake.test/c1", "info": map[string]any{"size": -3, "w": 1e12}})
	sticker := push("m.sticker", map[string]any{"body": "a cat", "url": "mxc://fake.test/s1", "info": map[string]any{"mimetype": "image/png"}})
	loc := push("", map[string]any{"msgtype": "m.location", "body": "here", "geo_uri": "geo:1,2"})
	enc := push("", map[string]any{"msgtype": "m.file", "body": "secret.pdf", "file": map[string]any{"url": "mxc://fake.test/e1", "v": "v2"}})
	msgs := h.Inbox.WaitN(t, 7, wait)
	byID := map[string]*message.Inbound{}
	for _, m := range msgs {
		byID[m.EventID] = m
	}
	check := func(id, text string, atts []message.Attachment, unsupported []string) {
		t.Helper()
		m := byID[id]
		if m == nil {
			t.Fatalf("%s not stored", id)
		}
		if m.Text != text || mustJSON(t, m.Attachments) != mustJSON(t, atts) || mustJSON(t, m.Unsupported) != mustJSON(t, unsupported) {
			t.Errorf("%s: text %q, attachments %s, unsupported %v", id, m.Text, mustJSON(t, m.Attachments), m.Unsupported)
		}
	}
	check(img, "what is this?", []message.Attachment{{Kind: message.MediaImage, Ref: "mxc://fake.test/img1", Name: "shot.png", MIME: "image/png", Size: 1234, Width: 640, Height: 480}}, nil)
	check(file, "", []message.Attachment{{Kind: message.MediaFile, Ref: "mxc://fake.test/f1", Name: "report.pdf", MIME: "application/pdf", Size: 99}}, nil)
	check(voice, "", []message.Attachment{{Kind: message.MediaVoice, Ref: "mxc://fake.test/v1", Name: "Voice message", MIME: "audio/ogg", Size: 5, Duration: 3}}, nil)
	check(video, "", []message.Attachment{{Kind: message.MediaVideo, Ref: "mxc://fake.test/c1", Name: "clip.mp4", Width: 2147483647}}, nil)
	check(sticker, "", nil, []string{"sticker"})
	check(loc, "", nil, []string{"location"})
	check(enc, "", nil, []string{"encrypted_file"})
}

// In a group with require_mention, a captioned image mentioning the bot is
// passed on; one whose file name happens to hold the bot's name is not.
func TestInboundMediaMentionGating(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	h.fake.Members(room, 5)
	h.fake.Push(room, matrixtest.Event{Sender: ann, Content: map[string]any{"msgtype": "m.image", "body": "herald.png", "url": "mxc://fake.test/a"}})
	id := h.fake.Push(room, matrixtest.Event{Sender: ann, Content: map[string]any{"msgtype": "m.image", "body": "Herald, look", "filename": "a.png", "url": "mxc://fake.test/b"}})
	m := h.Inbox.WaitN(t, 1, wait)[0]
	if m.EventID != id || m.Text != "Herald, look" || len(m.Attachments) != 1 {
		t.Fatalf("stored %+v", m)
	}
	h.fake.Wait(t, wait, "the first image counted as not mentioned", func() bool { return h.Metrics.Rejections(reasonNotMention) == 1 })
}

func TestMediaOfMalformed(t *testing.T) {
	// Neither url nor file: nothing to fetch.
	if att, _, unsup := mediaOf(&messageContent{MsgType: "m.image", Body: "x"}, message.MediaImage); att != nil || unsup != "" {
		t.Fatalf("attachment %+v, unsupported %q", att, unsup)
	}
	for uri, ok := range map[string]bool{
		"mxc://fake.test/abc_-1":      true,
		"mxc://host.example:8448/A1":  true,
		"mxc://[::1]:8448/A1":         true,
		"mxc://fake.test/../../admin": false,
		"mxc://fake.test/a/b":         false,
		"https://fake.test/a":         false,
		"mxc:///a":                    false,
	} {
		if _, _, got := parseMXC(uri); got != ok {
			t.Errorf("parseMXC(%q) = %v, want %v", uri, got, ok)
		}
	}
}
