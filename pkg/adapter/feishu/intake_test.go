// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

func TestReceiveText(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	id := h.fake.Push(feishutest.Event{
		Text: "hello herald", MessageID: "om_1", ChatID: "oc_1", ThreadID: "omt_1", SenderOpenID: "ou_ann",
	})
	msgs := h.inbox.WaitN(t, 1, wait)
	got := msgs[0]
	want := message.Inbound{
		Platform: "feishu", EventID: id, ChatID: "oc_1", ChatType: message.ChatDirect, ThreadID: "omt_1",
		SenderID: "ou_ann", MessageID: "om_1", Text: "hello herald",
	}
	got.ReceivedAt = time.Time{}
	if got.Platform != want.Platform || got.EventID != want.EventID || got.ChatID != want.ChatID ||
		got.ChatType != want.ChatType || got.ThreadID != want.ThreadID || got.SenderID != want.SenderID ||
		got.MessageID != want.MessageID || got.Text != want.Text {
		t.Errorf("inbound:\n got %+v\nwant %+v", *got, want)
	}
	acks := h.fake.WaitAcks(t, 1, wait)
	if acks[0].EventID != id || acks[0].Code != 200 {
		t.Errorf("ack = %+v", acks[0])
	}
	if _, err := strconv.Atoi(acks[0].BizRT); err != nil {
		t.Errorf("biz_rt %q is not a number of ms", acks[0].BizRT)
	}
	if string(acks[0].Frame.Payload) != `{"code":200,"headers":null,"data":null}` {
		t.Errorf("ack payload %s", acks[0].Frame.Payload)
	}
	bs := h.fake.Bootstraps()
	if len(bs) != 1 || bs[0].AppID != "cli_test" || bs[0].AppSecret != "test-secret" ||
		bs[0].Locale != "zh" || bs[0].ContentType != "application/json" || bs[0].UserAgent == "" {
		t.Errorf("bootstrap requests %+v", bs)
	}
}

// TestAckOnlyAfterStore: while the store fails nothing is acknowledged and
// the platform keeps redelivering; once it works the event is stored and
// acknowledged.
func TestAckOnlyAfterStore(t *testing.T) {
	h := newHarness(t, feishutest.Options{RedeliverAfter: 100 * time.Millisecond}, nil)
	h.inbox.SetFail(errors.New("disk full"))
	h.connect()
	id := h.fake.Push(feishutest.Event{Text: "x"})
	h.fake.WaitDeliveries(t, id, 3, wait)
	testwait.For(t, "three Deliver calls", func() bool { return h.inbox.Calls() >= 3 })
	if n := len(h.fake.Acks()); n != 0 {
		t.Fatalf("%d acks while Deliver fails, want 0", n)
	}
	h.inbox.SetFail(nil)
	h.inbox.WaitN(t, 1, wait)
	h.fake.WaitAcks(t, 1, wait)
	if n := h.fake.AcksFor(id); n != 1 {
		t.Errorf("acks for %s = %d, want 1", id, n)
	}
}

// TestRedeliveredEventDeduped: the platform delivers the same event_id
// twice (an ack was lost); the store keeps one message and both deliveries
// are acknowledged.
func TestRedeliveredEventDeduped(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	ev := feishutest.Event{EventID: "ev_dup", MessageID: "om_dup", Text: "once"}
	h.fake.Push(ev)
	h.fake.WaitAcks(t, 1, wait)
	h.fake.Push(ev)
	h.fake.WaitAcks(t, 2, wait)
	if n := h.fake.AcksFor("ev_dup"); n != 2 {
		t.Errorf("acks = %d, want 2", n)
	}
	if n := len(h.inbox.Messages()); n != 1 {
		t.Errorf("stored %d messages, want 1", n)
	}
	if n := h.inbox.Calls(); n != 2 {
		t.Errorf("Deliver called %d times, want 2", n)
	}
}

func TestFragmentsOutOfOrder(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	text := strings.Repeat("長い", 3000) // 6000 characters, 18 KB
	id := h.fake.Push(feishutest.Event{Text: text, Fragments: 3, Order: []int{2, 0, 1}})
	msgs := h.inbox.WaitN(t, 1, wait)
	if msgs[0].Text != text || msgs[0].EventID != id {
		t.Errorf("reassembled message has %d bytes of text, event %s", len(msgs[0].Text), msgs[0].EventID)
	}
	acks := h.fake.WaitAcks(t, 1, wait)
	if acks[0].Frame.Header(pbbp2.HeaderSeq) != "1" {
		t.Errorf("ack echoes seq %s, want 1 (the frame that completed the event)", acks[0].Frame.Header(pbbp2.HeaderSeq))
	}
}

// TestLargeEvent checks the read limit: a 200 KB single-frame event.
func TestLargeEvent(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	text := strings.Repeat("a", 60<<10)
	h.fake.Push(feishutest.Event{Text: text, Content: `{"text":"` + text + `","pad":"` + strings.Repeat("p", 140<<10) + `"}`})
	if got := h.inbox.WaitN(t, 1, wait)[0].Text; got != text {
		t.Errorf("text of %d bytes, want %d", len(got), len(text))
	}
}

func TestGroupMentions(t *testing.T) {
	bot := feishutest.Mention{Key: "@_user_1", OpenID: "ou_bot", Name: "herald"}
	ann := feishutest.Mention{Key: "@_user_2", OpenID: "ou_ann", Name: "Ann"}
	tests := []struct {
		name           string
		requireMention bool
		ev             feishutest.Event
		wantText       string // "" = not delivered
	}{
		{"bot mentioned", true,
			feishutest.Event{ChatType: "group", Text: "@_user_1 ask @_user_2 about it", Mentions: []feishutest.Mention{bot, ann}},
			"ask @Ann about it"},
		{"only another user mentioned", true,
			feishutest.Event{ChatType: "group", Text: "hi @_user_2", Mentions: []feishutest.Mention{ann}}, ""},
		{"no mention", true, feishutest.Event{ChatType: "group", Text: "hi all"}, ""},
		{"no mention, gating off", false, feishutest.Event{ChatType: "group", Text: "hi all"}, "hi all"},
		{"direct message needs no mention", true, feishutest.Event{ChatType: "p2p", Text: "hi"}, "hi"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, feishutest.Options{}, func(c *Config) { c.RequireMention = tt.requireMention })
			h.connect()
			h.fake.Push(tt.ev)
			h.fake.WaitAcks(t, 1, wait)
			msgs := h.inbox.Messages()
			switch {
			case tt.wantText == "" && len(msgs) != 0:
				t.Errorf("delivered %q, want nothing", msgs[0].Text)
			case tt.wantText == "" && h.m.Rejections(reasonNotAddressed) != 1:
				t.Errorf("not_mentioned rejections = %d, want 1", h.m.Rejections(reasonNotAddressed))
			case tt.wantText != "" && (len(msgs) != 1 || msgs[0].Text != tt.wantText):
				t.Errorf("delivered %+v, want text %q", msgs, tt.wantText)
			}
			if tt.wantText != "" && tt.ev.ChatType == "group" && msgs[0].ChatType != message.ChatGroup {
				t.Errorf("chat type %q", msgs[0].ChatType)
			}
		})
	}
}

// TestSkippedEventsAreAcked: events herald does not take are acknowledged
// (else the platform redelivers them forever), counted, and the connection
// keeps working.
func TestSkippedEventsAreAcked(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	h.fake.Push(feishutest.Event{SenderType: "app", Text: "from another bot"})
	h.fake.PushPayload("ev_other", []byte(`{"schema":"2.0","header":{"event_id":"ev_other","event_type":"im.chat.member.bot.added_v1"},"event":{}}`), 1, nil)
	h.fake.PushPayload("ev_enc", []byte(`{"encrypt":"FIAfJPGRmFZWkaxPQ1XrJZVbv2JwdjfLk4jx0k/U1deAqYK3AXOZ5zcHt/cC4ZNTqYwWUW/EoL+b2hW/C4zoAQ=="}`), 1, nil)
	h.fake.PushPayload("ev_bad", []byte(`{"schema":"2.0","header":`), 2, nil)
	h.fake.PushPayload("ev_noid", []byte(`{"schema":"2.0","header":{"event_type":"im.message.receive_v1"}}`), 1, nil)
	h.fake.Push(feishutest.Event{Text: "content is not JSON", Content: "{nope"})
	h.fake.WaitAcks(t, 6, wait)
	id := h.fake.Push(feishutest.Event{Text: "still here"})
	msgs := h.inbox.WaitN(t, 1, wait)
	if len(msgs) != 1 || msgs[0].EventID != id {
		t.Fatalf("stored %+v, want only %s", msgs, id)
	}
	for reason, want := range map[string]int{reasonFromBot: 1, reasonUnsupported: 1, reasonEncrypted: 1, reasonMalformed: 3} {
		if got := h.m.Rejections(reason); got != want {
			t.Errorf("Rejected(%q) = %d, want %d", reason, got, want)
		}
	}
}

// TestMessageTypes: images, files, voice, video and the images of a post
// become attachments with the keys FetchMedia needs (not "[image]"), a
// post's text is their caption, and stickers and other kinds are named in
// Unsupported.
func TestMessageTypes(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	push := func(typ, content string) string {
		return h.fake.Push(feishutest.Event{MessageType: typ, Content: content})
	}
	ids := map[string]string{
		push("image", `{"image_key":"img_v2_1"}`):                                                            "image",
		push("file", `{"file_key":"file_v2_2","file_name":"a.pdf"}`):                                         "file",
		push("audio", `{"file_key":"file_v2_3","duration":4200}`):                                            "audio",
		push("media", `{"file_key":"file_v2_4","image_key":"img_v2_5","file_name":"v.mp4","duration":9000}`): "media",
		push("sticker", `{"file_key":"sticker_1"}`):                                                          "sticker",
		push("share_chat", `{"chat_id":"oc_1"}`):                                                             "share_chat",
	}
	h.fake.Push(feishutest.Event{MessageType: "post", Mentions: []feishutest.Mention{{Key: "@_user_1", OpenID: "ou_bot", Name: "herald"}},
		Content: `{"title":"Report","content":[[{"tag":"at","user_id":"@_user_1","user_name":"herald"},{"tag":"text","text":" see "},{"tag":"a","text":"this","href":"https://example.org/x"}],[{"tag":"text","text":"line two"},{"tag":"img","image_key":"img_post"}]]}`})
	msgs := h.inbox.WaitN(t, 7, wait)
	for _, m := range msgs {
		typ, ok := ids[m.EventID]
		if !ok {
			if m.Text != "Report\nsee this (https://example.org/x)\nline two" || len(m.Attachments) != 1 ||
				m.Attachments[0].Ref != "img_post" || m.Attachments[0].Kind != message.MediaImage || m.Attachments[0].Meta[metaType] != "image" {
				t.Errorf("post: %+v", m)
			}
			continue
		}
		want := map[string]message.Attachment{
			"image": {Kind: message.MediaImage, Ref: "img_v2_1"},
			"file":  {Kind: message.MediaFile, Ref: "file_v2_2", Name: "a.pdf"},
			"audio": {Kind: message.MediaVoice, Ref: "file_v2_3", Duration: 4},
			"media": {Kind: message.MediaVideo, Ref: "file_v2_4", Name: "v.mp4", Duration: 9},
		}
		if w, media := want[typ]; media {
			if len(m.Attachments) != 1 || m.Text != "" || len(m.Unsupported) != 0 {
				t.Errorf("%s: %+v", typ, m)
				continue
			}
			got := m.Attachments[0]
			wantType := "file"
			if typ == "image" {
				wantType = "image"
			}
			if got.Kind != w.Kind || got.Ref != w.Ref || got.Name != w.Name || got.Duration != w.Duration ||
				got.Meta[metaMessageID] != m.MessageID || got.Meta[metaType] != wantType {
				t.Errorf("%s: attachment %+v, want %+v", typ, got, w)
			}
			continue
		}
		if len(m.Attachments) != 0 || len(m.Unsupported) != 1 || m.Unsupported[0] != typ {
			t.Errorf("%s: %+v, want Unsupported [%s]", typ, m, typ)
		}
	}
}

func TestTooLargeTextAcked(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	h.fake.Push(feishutest.Event{Text: strings.Repeat("x", message.MaxTextBytes+1)})
	h.fake.WaitAcks(t, 1, wait)
	if n := len(h.inbox.Messages()); n != 0 {
		t.Errorf("stored %d messages", n)
	}
	if h.m.Rejections(reasonTooLarge) != 1 {
		t.Errorf("too_large rejections = %d", h.m.Rejections(reasonTooLarge))
	}
}

// TestMalformedFramesNeverCrash feeds frames that cannot be decoded or
// reassembled; the connection survives and later events arrive.
func TestMalformedFramesNeverCrash(t *testing.T) {
	h := newHarness(t, feishutest.Options{}, nil)
	h.connect()
	badSum := &pbbp2.Frame{SeqID: 1, Service: 7, Method: pbbp2.MethodData, Headers: []pbbp2.Header{
		{Key: "type", Value: "event"}, {Key: "message_id", Value: "fm_x"}, {Key: "sum", Value: "two"}, {Key: "seq", Value: "0"},
	}, Payload: []byte("{}")}
	for _, b := range [][]byte{{0xff, 0x01}, nil, badSum.Marshal()} {
		if !h.fake.PushFrame(b) {
			t.Fatal("no connection")
		}
	}
	h.fake.PushText("text frames are not part of the protocol")
	h.fake.WaitAcks(t, 1, wait) // the bad-sum frame: never processable, acked
	id := h.fake.Push(feishutest.Event{Text: "after"})
	if msgs := h.inbox.WaitN(t, 1, wait); msgs[0].EventID != id {
		t.Errorf("stored %+v", msgs[0])
	}
	if got := h.m.Rejections(reasonMalformed); got != 3 {
		t.Errorf("malformed = %d, want 3 (two undecodable frames, one bad sum)", got)
	}
	if h.fake.Connections() != 1 {
		t.Errorf("reconnected %d times; malformed input must not cost the connection", h.fake.Connections()-1)
	}
}
