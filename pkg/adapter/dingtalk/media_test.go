// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestInboundMedia(t *testing.T) {
	h := newHarness(t, nil)
	h.start(t)
	for _, tc := range []struct {
		name        string
		msg         dingtalktest.Msg
		text        string
		atts        []message.Attachment
		unsupported []string
	}{
		{"picture", dingtalktest.Msg{Msgtype: "picture", Content: dingtalktest.PictureContent("dcpic")}, "",
			[]message.Attachment{{Kind: message.MediaImage, Ref: "dcpic"}}, nil},
		{"file", dingtalktest.Msg{Msgtype: "file", Content: dingtalktest.FileContent("dcfile", "report.pdf")}, "",
			[]message.Attachment{{Kind: message.MediaFile, Ref: "dcfile", Name: "report.pdf"}}, nil},
		{"audio with DingTalk's transcript", dingtalktest.Msg{Msgtype: "audio", Content: dingtalktest.AudioContent("dcvoice", " hello there ", 4100)}, "hello there",
			[]message.Attachment{{Kind: message.MediaVoice, Ref: "dcvoice", Duration: 5}}, nil},
		{"audio duration as a string", dingtalktest.Msg{Msgtype: "audio", Content: map[string]string{"downloadCode": "dcv2", "duration": "2000"}}, "",
			[]message.Attachment{{Kind: message.MediaVoice, Ref: "dcv2", Duration: 2}}, nil},
		{"video", dingtalktest.Msg{Msgtype: "video", Content: dingtalktest.VideoContent("dcvideo", 12000)}, "",
			[]message.Attachment{{Kind: message.MediaVideo, Ref: "dcvideo", Name: "video.mp4", MIME: "video/mp4", Duration: 12}}, nil},
		{"richText: text is the caption of its pictures", dingtalktest.Msg{Group: true, Msgtype: "richText", Content: dingtalktest.RichTextContent(" look", "dcone", "and this", "dctwo")}, "look\nand this",
			[]message.Attachment{{Kind: message.MediaImage, Ref: "dcone"}, {Kind: message.MediaImage, Ref: "dctwo"}}, nil},
		{"picture without downloadCode", dingtalktest.Msg{Msgtype: "picture", Content: map[string]string{}}, "", nil, []string{"picture"}},
		{"unknown msgtype", dingtalktest.Msg{Msgtype: "chatRecord", Content: map[string]string{"summary": "x"}}, "", nil, []string{"chatRecord"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.msg.MsgID = "m-" + tc.name
			n := len(h.inbox.Messages()) + 1
			id := h.srv.Push(tc.msg)
			h.srv.Await(t, "ack", wait, acked(id))
			msgs := h.inbox.WaitN(t, n, wait)
			m := msgs[len(msgs)-1]
			if m.EventID != tc.msg.MsgID || m.Text != tc.text || !reflect.DeepEqual(m.Attachments, tc.atts) || !reflect.DeepEqual(m.Unsupported, tc.unsupported) {
				t.Fatalf("inbound text %q attachments %+v unsupported %v", m.Text, m.Attachments, m.Unsupported)
			}
			if m.Meta[MetaRobotCode] != dingtalktest.DefaultClientID {
				t.Fatalf("meta %v", m.Meta)
			}
		})
	}
}

func TestInboundMediaMalformed(t *testing.T) {
	for _, data := range []string{
		`{"msgId":"m","conversationId":"c","conversationType":"1","msgtype":"picture","content":"nope"}`,
		`{"msgId":"m","conversationId":"c","conversationType":"1","msgtype":"richText","content":[1]}`,
		`{"msgId":"m","conversationId":"c","conversationType":"1"}`,
	} {
		_, err := inbound(TypeName, data, time.Now())
		var rj *rejectError
		if !errors.As(err, &rj) || rj.reason != reasonMalformed {
			t.Errorf("%s: %v", data, err)
		}
	}
}
