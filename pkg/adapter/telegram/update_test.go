// SPDX-License-Identifier: Apache-2.0

package telegram

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

var testFilter = filter{platform: "tg", botID: 42, username: "gw_bot", groupMentionOnly: true}

func TestInboundMapping(t *testing.T) {
	const grp = `"chat":{"id":-100,"type":"supergroup"}`
	const ann = `"from":{"id":555,"is_bot":false,"first_name":"Ann"}`
	const dm = `,"chat":{"id":555,"type":"private"},`
	tests := []struct {
		name   string
		raw    string
		f      *filter
		reason string // "" = delivered
		check  func(*message.Inbound) string
	}{
		{name: "private", raw: `{"update_id":1,"message":{"message_id":7,` + ann + `,"chat":{"id":555,"type":"private"},"date":1700000000,"text":"hi"}}`,
			check: func(m *message.Inbound) string {
				return want(m.ChatType == message.ChatDirect && m.EventID == "1" && m.MessageID == "7" && m.SenderID == "555" && m.ChatID == "555" && m.Text == "hi" && m.SenderName == "Ann")
			}},
		{name: "group command", raw: `{"update_id":2,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"/status@gw_bot"}}`,
			check: func(m *message.Inbound) string { return want(m.ChatType == message.ChatGroup && m.Text == "/status") }},
		{name: "group command, other case", raw: `{"update_id":2,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"/Status@GW_Bot  x"}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "/Status  x") }},
		{name: "group command without suffix", raw: `{"update_id":2,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"/new"}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "/new") }},
		{name: "group command for another bot", raw: `{"update_id":3,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"/status@other_bot"}}`,
			reason: reasonNotAddressed},
		{name: "dm command for another bot kept as text", raw: `{"update_id":3,"message":{"message_id":1,` + ann + `,"chat":{"id":555,"type":"private"},"text":"/status@other_bot"}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "/status@other_bot") }},
		{name: "group mention", raw: `{"update_id":4,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"😀 @GW_bot look","entities":[{"type":"mention","offset":3,"length":7}]}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "😀 @GW_bot look") }},
		{name: "group leading mention stripped", raw: `{"update_id":4,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"@gw_bot, what now","entities":[{"type":"mention","offset":0,"length":7}]}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "what now") }},
		{name: "mention then command", raw: `{"update_id":4,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"@gw_bot /reset@gw_bot","entities":[{"type":"mention","offset":0,"length":7}]}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "/reset") }},
		{name: "mention of someone else", raw: `{"update_id":5,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"@gw_botany hi","entities":[{"type":"mention","offset":0,"length":10}]}}`,
			reason: reasonNotAddressed},
		{name: "username in text without entity", raw: `{"update_id":5,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"ask @gw_bot"}}`,
			reason: reasonNotAddressed},
		{name: "text_mention", raw: `{"update_id":6,"message":{"message_id":1,` + ann + `,` + grp + `,"text":"gw look","entities":[{"type":"text_mention","offset":0,"length":2,"user":{"id":42,"is_bot":true,"first_name":"gw"}}]}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "gw look") }},
		{name: "reply to the bot", raw: `{"update_id":7,"message":{"message_id":9,` + ann + `,` + grp + `,"text":"and then?","reply_to_message":{"message_id":8,"from":{"id":42,"is_bot":true,"first_name":"gw"},"chat":{"id":-100,"type":"supergroup"},"text":"x"}}}`,
			check: func(m *message.Inbound) string { return want(m.Text == "and then?") }},
		{name: "reply to someone else", raw: `{"update_id":7,"message":{"message_id":9,` + ann + `,` + grp + `,"text":"and then?","reply_to_message":{"message_id":8,"from":{"id":7,"is_bot":false,"first_name":"B"},"chat":{"id":-100,"type":"supergroup"}}}}`,
			reason: reasonNotAddressed},
		{name: "topic root opened by the bot is no reply", raw: `{"update_id":8,"message":{"message_id":12,"message_thread_id":11,"is_topic_message":true,` + ann + `,` + grp + `,"text":"chatter","reply_to_message":{"message_id":11,"from":{"id":42,"is_bot":true,"first_name":"gw"},"chat":{"id":-100,"type":"supergroup"}}}}`,
			reason: reasonNotAddressed},
		{name: "forum topic thread", raw: `{"update_id":9,"message":{"message_id":12,"message_thread_id":11,"is_topic_message":true,` + ann + `,` + grp + `,"text":"/help"}}`,
			check: func(m *message.Inbound) string { return want(m.ThreadID == "11") }},
		{name: "reply thread outside a forum is no topic", raw: `{"update_id":9,"message":{"message_id":12,"message_thread_id":11,` + ann + `,"chat":{"id":555,"type":"private"},"text":"x"}}`,
			check: func(m *message.Inbound) string { return want(m.ThreadID == "") }},
		{name: "group without gating", f: &filter{platform: "tg", botID: 42, username: "gw_bot"},
			raw:   `{"update_id":10,"message":{"message_id":1,` + ann + `,"chat":{"id":-5,"type":"group"},"text":"chatter"}}`,
			check: func(m *message.Inbound) string { return want(m.ChatType == message.ChatGroup && m.ChatID == "-5") }},
		{name: "channel", raw: `{"update_id":11,"message":{"message_id":1,` + ann + `,"chat":{"id":-7,"type":"channel"},"text":"post"}}`,
			check: func(m *message.Inbound) string { return want(m.ChatType == message.ChatChannel) }},
		{name: "from a bot", raw: `{"update_id":12,"message":{"message_id":1,"from":{"id":9,"is_bot":true,"first_name":"b"},"chat":{"id":555,"type":"private"},"text":"loop?"}}`,
			reason: reasonFromBot},
		{name: "edited message", raw: `{"update_id":13,"edited_message":{"message_id":1,` + ann + `,"chat":{"id":555,"type":"private"},"text":"x"}}`,
			reason: reasonUnsupported},
		{name: "photo with caption, largest size within the download limit", raw: `{"update_id":14,"message":{"message_id":1,` + ann + `,"chat":{"id":555,"type":"private"},"photo":[{"file_id":"s","width":90,"height":60,"file_size":900},{"file_id":"m","width":1280,"height":720,"file_size":84000},{"file_id":"huge","width":9000,"height":6000,"file_size":30000000}],"caption":"look"}}`,
			check: func(m *message.Inbound) string {
				a := m.Attachments
				return want(m.Text == "look" && oneAttachment(a, message.Attachment{Kind: message.MediaImage, Ref: "m", Size: 84000, Width: 1280, Height: 720}))
			}},
		{name: "photo with every size over the download limit is kept, to fail as too large", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"photo":[{"file_id":"b","width":9000,"height":6000,"file_size":31000000},{"file_id":"a","width":8000,"height":5000,"file_size":30000000}]}}`,
			check: func(m *message.Inbound) string {
				return want(oneAttachment(m.Attachments, message.Attachment{Kind: message.MediaImage, Ref: "a", Size: 30000000, Width: 8000, Height: 5000}))
			}},
		{name: "document", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"document":{"file_id":"d","file_unique_id":"u","file_name":"r.pdf","mime_type":"application/pdf","file_size":12}}}`,
			check: func(m *message.Inbound) string {
				return want(m.Text == "" && oneAttachment(m.Attachments, message.Attachment{Kind: message.MediaFile, Ref: "d", Name: "r.pdf", MIME: "application/pdf", Size: 12}))
			}},
		{name: "voice", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"voice":{"file_id":"v","file_unique_id":"u","duration":3,"mime_type":"audio/ogg","file_size":5000}}}`,
			check: func(m *message.Inbound) string {
				return want(oneAttachment(m.Attachments, message.Attachment{Kind: message.MediaVoice, Ref: "v", MIME: "audio/ogg", Size: 5000, Duration: 3}))
			}},
		{name: "audio", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"audio":{"file_id":"au","file_unique_id":"u","duration":200,"file_name":"s.mp3","mime_type":"audio/mpeg"}}}`,
			check: func(m *message.Inbound) string {
				return want(oneAttachment(m.Attachments, message.Attachment{Kind: message.MediaAudio, Ref: "au", Name: "s.mp3", MIME: "audio/mpeg", Duration: 200}))
			}},
		{name: "video", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"video":{"file_id":"vi","file_unique_id":"u","width":640,"height":480,"duration":9,"mime_type":"video/mp4","file_size":7}}}`,
			check: func(m *message.Inbound) string {
				return want(oneAttachment(m.Attachments, message.Attachment{Kind: message.MediaVideo, Ref: "vi", MIME: "video/mp4", Size: 7, Width: 640, Height: 480, Duration: 9}))
			}},
		{name: "video note", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"video_note":{"file_id":"vn","file_unique_id":"u","length":240,"duration":4}}}`,
			check: func(m *message.Inbound) string {
				return want(oneAttachment(m.Attachments, message.Attachment{Kind: message.MediaVideo, Ref: "vn", Width: 240, Height: 240, Duration: 4}))
			}},
		{name: "animation is taken once, not again as document", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"animation":{"file_id":"an","file_unique_id":"u","width":1,"height":1,"duration":1},"document":{"file_id":"an","file_unique_id":"u"}}}`,
			check: func(m *message.Inbound) string {
				return want(len(m.Attachments) == 1 && m.Attachments[0].Kind == message.MediaVideo && m.Attachments[0].Ref == "an")
			}},
		{name: "sticker only still reaches the core", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"sticker":{"file_id":"st","file_unique_id":"u","type":"regular","width":512,"height":512,"is_animated":false,"is_video":false}}}`,
			check: func(m *message.Inbound) string {
				return want(m.Text == "" && len(m.Attachments) == 0 && len(m.Unsupported) == 1 && m.Unsupported[0] == "sticker")
			}},
		{name: "location", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"location":{"latitude":1.5,"longitude":2.5}}}`,
			check: func(m *message.Inbound) string {
				return want(len(m.Unsupported) == 1 && m.Unsupported[0] == "location")
			}},
		{name: "group photo without caption is not addressed", raw: `{"update_id":14,"message":{"message_id":1,` + ann + `,` + grp + `,"photo":[{"file_id":"a"}]}}`,
			reason: reasonNotAddressed},
		{name: "group caption mentioning the bot", raw: `{"update_id":14,"message":{"message_id":1,` + ann + `,` + grp + `,"photo":[{"file_id":"a"}],"caption":"@gw_bot what is this","caption_entities":[{"type":"mention","offset":0,"length":7}]}}`,
			check: func(m *message.Inbound) string {
				return want(m.Text == "what is this" && len(m.Attachments) == 1 && m.Attachments[0].Ref == "a")
			}},
		{name: "service message", raw: `{"update_id":14,"message":{"message_id":1,` + ann + dm + `"new_chat_title":"x"}}`,
			reason: reasonUnsupported},
		{name: "unknown chat type", raw: `{"update_id":15,"message":{"message_id":1,` + ann + `,"chat":{"id":555,"type":"secret"},"text":"x"}}`,
			reason: reasonInvalid},
		{name: "no sender", raw: `{"update_id":16,"message":{"message_id":1,"chat":{"id":555,"type":"private"},"text":"x"}}`,
			reason: reasonInvalid},
		{name: "too large", raw: `{"update_id":17,"message":{"message_id":1,` + ann + `,"chat":{"id":555,"type":"private"},"text":"` + strings.Repeat("x", message.MaxTextBytes+1) + `"}}`,
			reason: reasonInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := parseUpdate([]byte(tc.raw))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			f := &testFilter
			if tc.f != nil {
				f = tc.f
			}
			m, reason, detail := f.inbound(&u, time.Now())
			if reason != tc.reason {
				t.Fatalf("reason %q (%s), want %q", reason, detail, tc.reason)
			}
			if tc.reason != "" {
				if m != nil {
					t.Fatalf("skipped update produced %+v", m)
				}
				return
			}
			if msg := tc.check(m); msg != "" {
				t.Fatalf("%s: %+v", msg, *m)
			}
		})
	}
}

func want(ok bool) string {
	if ok {
		return ""
	}
	return "unexpected mapping"
}

func TestParseUpdateErrors(t *testing.T) {
	for _, raw := range []string{`{}`, `{"update_id":0}`, `{"update_id":-3}`, `[]`, `{"update_id":"1"}`, `{"update_id":5,"message":7}`} {
		if _, err := parseUpdate([]byte(raw)); err == nil {
			t.Errorf("parseUpdate(%s) succeeded", raw)
		}
	}
	if id := peekUpdateID([]byte(`{"update_id":5,"message":7}`)); id != 5 {
		t.Errorf("peekUpdateID = %d, want 5", id)
	}
}

var fuzzSeeds = []string{
	`{"update_id":1001,"message":{"message_id":7,"from":{"id":555,"is_bot":false,"first_name":"Ann"},"chat":{"id":555,"type":"private"},"date":1700000000,"text":"hi"}}`,
	`{"update_id":2,"message":{"message_id":1,"from":{"id":5,"is_bot":false,"first_name":"A"},"chat":{"id":-100,"type":"supergroup"},"text":"/status@gw_bot x"}}`,
	`{"update_id":4,"message":{"message_id":1,"from":{"id":5,"is_bot":false,"first_name":"A"},"chat":{"id":-100,"type":"supergroup"},"text":"😀 @gw_bot","entities":[{"type":"mention","offset":3,"length":7}]}}`,
	`{"update_id":4,"message":{"message_id":1,"from":{"id":5,"is_bot":false,"first_name":"A"},"chat":{"id":-100,"type":"group"},"text":"@gw_bot","entities":[{"type":"mention","offset":99,"length":-7},{"type":"text_mention","offset":0,"length":1}]}}`,
	`{"update_id":8,"message":{"message_id":12,"message_thread_id":11,"is_topic_message":true,"from":{"id":5,"is_bot":false,"first_name":"A"},"chat":{"id":-1,"type":"supergroup"},"text":"x","reply_to_message":{"message_id":11,"from":{"id":42,"is_bot":true,"first_name":"gw"},"chat":{"id":-1,"type":"supergroup"}}}}`,
	`{"update_id":13,"edited_message":{"message_id":1,"chat":{"id":1,"type":"private"},"text":"x"}}`,
	`{"update_id":14,"callback_query":{"id":"1"}}`,
	`{"update_id":15,"callback_query":{"id":"77","from":{"id":5,"is_bot":false,"first_name":"A"},"message":{"message_id":9,"chat":{"id":-100,"type":"supergroup"},"date":0},"chat_instance":"1","data":"hr1:a:x"}}`,
	`{"update_id":1,"message":{"message_id":1,"from":{"id":5,"first_name":"A"},"chat":{"id":5,"type":"private"},"text":"/"}}`,
	`{"update_id":1,"message":{"message_id":1,"from":{"id":5,"first_name":"A"},"chat":{"id":5,"type":"private"},"text":"\u0000\ud800"}}`,
	`{"update_id":1,"message":null}`,
	`{"update_id":1e3}`,
	`not json`,
	// Values a hostile server controls: update_id at and past int64, a
	// text far above Telegram's 4096 characters, entities past its end.
	`{"update_id":9223372036854775807,"message":{"message_id":1,"from":{"id":5,"first_name":"A"},"chat":{"id":5,"type":"private"},"text":"x"}}`,
	`{"update_id":9223372036854775808,"message":{"message_id":1,"from":{"id":5,"first_name":"A"},"chat":{"id":5,"type":"private"},"text":"x"}}`,
	`{"update_id":-1,"message":{"message_id":1,"from":{"id":5,"first_name":"A"},"chat":{"id":5,"type":"private"},"text":"x"}}`,
	`{"update_id":2,"message":{"message_id":1,"from":{"id":5,"first_name":"A"},"chat":{"id":-1,"type":"group"},"text":"@gw_bot ` + strings.Repeat("y", 70000) + `","entities":[{"type":"mention","offset":0,"length":7},{"type":"mention","offset":2147483647,"length":2147483647}]}}`,
}

// FuzzParseUpdate feeds arbitrary getUpdates entries through parsing and
// mapping. Invariants: no panic; a delivered message is valid, carries the
// update_id as EventID, and has no command suffix for this bot left.
func FuzzParseUpdate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		u, err := parseUpdate(raw)
		if err != nil {
			_ = peekUpdateID(raw)
			return
		}
		for _, fl := range []filter{testFilter, {platform: "tg"}} {
			m, reason, _ := fl.inbound(&u, time.Unix(0, 0))
			if m == nil {
				if reason == "" {
					t.Fatal("skipped without a reason")
				}
				continue
			}
			if err := m.Validate(); err != nil {
				t.Fatalf("delivered an invalid message: %v", err)
			}
			if u.CallbackQuery != nil {
				// A button press: the query's id, the button's data.
				if m.EventID != "cq:"+u.CallbackQuery.ID || m.Button == "" || m.Text != "" {
					t.Fatalf("press %+v for callback query %+v", m, u.CallbackQuery)
				}
				continue
			}
			if m.EventID != strconv.FormatInt(*u.UpdateID, 10) {
				t.Fatalf("EventID %q for update_id %d", m.EventID, *u.UpdateID)
			}
			if m.Text == "" {
				t.Fatal("delivered an empty text")
			}
			if name, target, _, ok := parseCommand(m.Text); ok && fl.username != "" && strings.EqualFold(target, fl.username) {
				t.Fatalf("command /%s@%s left unstripped in %q", name, target, m.Text)
			}
		}
	})
}

// BenchmarkParseUpdates measures one full getUpdates batch (100 updates):
// envelope, per-update parse and mapping.
func BenchmarkParseUpdates(b *testing.B) {
	var ups []string
	for i := range 100 {
		ups = append(ups, fmt.Sprintf(`{"update_id":%d,"message":{"message_id":%d,"from":{"id":555,"is_bot":false,"first_name":"Ann","username":"ann","language_code":"en"},"chat":{"id":-1001,"type":"supergroup","title":"Team"},"date":1700000000,"text":"@gw_bot please summarise the thread about the release %d","entities":[{"type":"mention","offset":0,"length":7}]}}`, 1000+i, i, i))
	}
	body := []byte(`{"ok":true,"result":[` + strings.Join(ups, ",") + `]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	now := time.Now()
	for b.Loop() {
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil {
			b.Fatal(err)
		}
		var raws []json.RawMessage
		if err := json.Unmarshal(env.Result, &raws); err != nil {
			b.Fatal(err)
		}
		for _, raw := range raws {
			u, err := parseUpdate(raw)
			if err != nil {
				b.Fatal(err)
			}
			if m, _, _ := testFilter.inbound(&u, now); m == nil {
				b.Fatal("not delivered")
			}
		}
	}
}

// oneAttachment reports whether atts is exactly want.
func oneAttachment(atts []message.Attachment, want message.Attachment) bool {
	return len(atts) == 1 && reflect.DeepEqual(atts[0], want)
}
