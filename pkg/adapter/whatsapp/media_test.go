// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestInboundMedia(t *testing.T) {
	h := newHarness(t, "", nil).start()
	h.deliver(h.fake.Text(
		whatsapptest.Message{ID: "wamid.img", From: ann, Type: "image", MediaID: "101", MIME: "image/jpeg", Caption: "my cat"},
		whatsapptest.Message{ID: "wamid.doc", From: ann, Type: "document", MediaID: "102", MIME: "application/pdf", Filename: "r.pdf", Caption: "the report"},
		whatsapptest.Message{ID: "wamid.voice", From: ann, Type: "audio", MediaID: "103", MIME: "audio/ogg; codecs=opus", Voice: true},
		whatsapptest.Message{ID: "wamid.audio", From: ann, Type: "audio", MediaID: "104", MIME: "audio/mpeg"},
		whatsapptest.Message{ID: "wamid.video", From: ann, Type: "video", MediaID: "105", MIME: "video/mp4", Caption: "clip"},
		whatsapptest.Message{ID: "wamid.vdoc", From: ann, Type: "document", MediaID: "106", MIME: "video/mp4", Filename: "v.mp4"},
		whatsapptest.Message{ID: "wamid.sticker", From: ann, Type: "sticker", MediaID: "107", MIME: "image/webp"},
		whatsapptest.Message{ID: "wamid.react", From: ann, Type: "reaction"},
		whatsapptest.Message{ID: "wamid.contacts", From: ann, Type: "contacts"},
		whatsapptest.Message{ID: "wamid.noid", From: ann, Type: "image"},
		whatsapptest.Message{ID: "wamid.system", From: ann, Type: "system"},
	))
	want := []struct {
		id, text    string
		kind        message.MediaKind
		ref, mime   string
		name        string
		unsupported string
	}{
		{"wamid.img", "my cat", message.MediaImage, "101", "image/jpeg", "", ""},
		{"wamid.doc", "the report", message.MediaFile, "102", "application/pdf", "r.pdf", ""},
		{"wamid.voice", "", message.MediaVoice, "103", "audio/ogg; codecs=opus", "", ""},
		{"wamid.audio", "", message.MediaAudio, "104", "audio/mpeg", "", ""},
		{"wamid.video", "clip", message.MediaVideo, "105", "video/mp4", "", ""},
		{"wamid.vdoc", "", message.MediaVideo, "106", "video/mp4", "v.mp4", ""},
		{"wamid.sticker", "", "", "", "", "", "sticker"},
		{"wamid.react", "", "", "", "", "", "reaction"},
		{"wamid.contacts", "", "", "", "", "", "contacts"},
		{"wamid.noid", "", "", "", "", "", "image"},
	}
	msgs := h.inbox.Messages()
	if len(msgs) != len(want) {
		t.Fatalf("%d messages stored, want %d", len(msgs), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		if err := m.Validate(); err != nil {
			t.Errorf("%s: invalid: %v", w.id, err)
		}
		if m.EventID != w.id || m.Text != w.text {
			t.Errorf("%s: event %s text %q, want %q", w.id, m.EventID, m.Text, w.text)
		}
		if w.unsupported != "" {
			if len(m.Attachments) != 0 || len(m.Unsupported) != 1 || m.Unsupported[0] != w.unsupported {
				t.Errorf("%s: attachments %+v unsupported %v, want %s", w.id, m.Attachments, m.Unsupported, w.unsupported)
			}
			continue
		}
		if len(m.Attachments) != 1 || len(m.Unsupported) != 0 {
			t.Errorf("%s: attachments %+v unsupported %v", w.id, m.Attachments, m.Unsupported)
			continue
		}
		a := m.Attachments[0]
		if a.Kind != w.kind || a.Ref != w.ref || a.MIME != w.mime || a.Name != w.name {
			t.Errorf("%s: attachment %+v", w.id, a)
		}
	}
	// The system message (the user changed number) is skipped, counted.
	if n := h.metrics.Rejections(RejectUnsupported); n != 1 {
		t.Errorf("unsupported_type %d, want the system message", n)
	}
	// Every message counted for the window, media included.
	if _, ok := h.a.window.get(ann); !ok {
		t.Error("media messages did not open the window")
	}
}

func TestUnsupportedName(t *testing.T) {
	for in, want := range map[string]string{
		"sticker": "sticker", "": "unknown", "Weird Type!": "weirdtype", "😀": "unknown",
		"a_very_long_type_name_that_goes_on_and_on": "a_very_long_type_name_that_goes_",
	} {
		if got := unsupportedName(in); got != want {
			t.Errorf("unsupportedName(%q) = %q, want %q", in, got, want)
		}
	}
}
