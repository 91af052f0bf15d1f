// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"reflect"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestIntakeMedia(t *testing.T) {
	h := newHarness(t)
	h.start(t)
	photo := h.fake.Message("")
	photo.Attachments = []signaltest.Attachment{{ContentType: "image/jpeg", ID: "a1.jpg", Width: 1280, Height: 720, Data: []byte("jpeg")}}
	h.fake.Push(photo)
	several := h.fake.Message("the files")
	several.Attachments = []signaltest.Attachment{
		{ContentType: "application/pdf", Filename: "r.pdf", ID: "a2.pdf", Data: []byte("%PDF")},
		{ContentType: "audio/aac", ID: "a3.aac", Data: []byte("aac")},
		{ContentType: "video/mp4", Filename: "v.mp4", ID: "a4.mp4", Data: []byte("mp4")},
	}
	h.fake.Push(several)
	captioned := h.fake.Message("")
	captioned.Attachments = []signaltest.Attachment{{ContentType: "image/png", ID: "a5.png", Caption: "my cat", Data: []byte("png")}}
	h.fake.Push(captioned)
	sticker := h.fake.Message("")
	sticker.Extra = map[string]any{"sticker": map[string]any{"packId": "p", "stickerId": 1}}
	h.fake.Push(sticker)
	reaction := h.fake.Message("")
	reaction.Extra = map[string]any{"reaction": map[string]any{"emoji": "👍", "targetSentTimestamp": 1}}
	h.fake.Push(reaction)
	noID := h.fake.Message("")
	noID.Attachments = []signaltest.Attachment{{ContentType: "image/png"}}
	h.fake.Push(noID)
	// A remote deletion carries nothing to answer: skipped, not stored.
	del := h.fake.Message("")
	del.Extra = map[string]any{"remoteDelete": map[string]any{"timestamp": 1}}
	h.fake.Push(del)
	h.fake.Push(h.fake.Message("last"))

	got := h.Inbox.WaitN(t, 7, wait)
	for _, m := range got {
		if err := m.Validate(); err != nil {
			t.Errorf("%s: %v", m.EventID, err)
		}
	}
	if m := got[0]; m.Text != "" || len(m.Attachments) != 1 ||
		!reflect.DeepEqual(m.Attachments[0], message.Attachment{Kind: message.MediaImage, Ref: "a1.jpg", MIME: "image/jpeg", Size: 4, Width: 1280, Height: 720}) {
		t.Errorf("photo: %+v", m)
	}
	m := got[1]
	if m.Text != "the files" || len(m.Attachments) != 3 || m.Attachments[0].Kind != message.MediaFile || m.Attachments[0].Name != "r.pdf" ||
		m.Attachments[1].Kind != message.MediaAudio || m.Attachments[2].Kind != message.MediaVideo {
		t.Errorf("several: %+v", m)
	}
	if m := got[2]; m.Text != "my cat" || len(m.Attachments) != 1 {
		t.Errorf("captioned: %+v", m)
	}
	for i, want := range []string{"sticker", "reaction", "attachment"} {
		if m := got[3+i]; len(m.Unsupported) != 1 || m.Unsupported[0] != want || len(m.Attachments) != 0 {
			t.Errorf("%s: %+v", want, m)
		}
	}
	if got[6].Text != "last" {
		t.Errorf("the deletion was stored: %+v", got[6])
	}
	if n := h.Metrics.Rejections(reasonNoText); n != 1 {
		t.Errorf("skipped %d, want the deletion", n)
	}
}
