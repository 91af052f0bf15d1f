// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/message"
)

// TestInboundMedia: images, voice (with WeCom's transcript as the text),
// video and files are stored with their MediaId before the 200;
// locations and links reach the core as unsupported kinds.
func TestInboundMedia(t *testing.T) {
	h := newHarness(t, nil).start()
	for i, tc := range []struct {
		msg         wecomtest.Message
		text        string
		atts        []message.Attachment
		unsupported []string
	}{
		{wecomtest.Message{Type: "image", MediaID: "m-img"}, "", []message.Attachment{{Kind: message.MediaImage, Ref: "m-img"}}, nil},
		{wecomtest.Message{Type: "voice", MediaID: "m-voice", Recognition: " 你好 "}, "你好",
			[]message.Attachment{{Kind: message.MediaVoice, Ref: "m-voice", Name: "voice.amr", MIME: "audio/amr"}}, nil},
		{wecomtest.Message{Type: "voice", MediaID: "m-speex", Format: "speex"}, "",
			[]message.Attachment{{Kind: message.MediaVoice, Ref: "m-speex", Name: "voice.speex", MIME: "audio/speex"}}, nil},
		{wecomtest.Message{Type: "video", MediaID: "m-video"}, "", []message.Attachment{{Kind: message.MediaVideo, Ref: "m-video"}}, nil},
		{wecomtest.Message{Type: "file", MediaID: "m-file"}, "", []message.Attachment{{Kind: message.MediaFile, Ref: "m-file"}}, nil},
		{wecomtest.Message{Type: "location"}, "", nil, []string{"location"}},
		{wecomtest.Message{Type: "link"}, "", nil, []string{"link"}},
	} {
		tc.msg.ID, tc.msg.From = "9000"+string(rune('0'+i)), "zhangsan"
		if rec := h.post(h.fake.Text(tc.msg)); rec.Code != http.StatusOK {
			t.Fatalf("%s: %d", tc.msg.Type, rec.Code)
		}
		msgs := h.inbox.Messages()
		if len(msgs) != i+1 {
			t.Fatalf("%s: %d stored, want %d", tc.msg.Type, len(msgs), i+1)
		}
		m := msgs[i]
		if m.EventID != tc.msg.ID || m.ChatID != "zhangsan" || m.Text != tc.text || !reflect.DeepEqual(m.Attachments, tc.atts) ||
			!reflect.DeepEqual(m.Unsupported, tc.unsupported) {
			t.Fatalf("%s: stored text %q attachments %+v unsupported %v", tc.msg.Type, m.Text, m.Attachments, m.Unsupported)
		}
	}
}
