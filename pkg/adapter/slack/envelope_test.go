// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// eventEnvelope builds an events_api frame around event (a JSON object).
func eventEnvelope(eventID, event string) string {
	return `{"envelope_id":"e1","type":"events_api","accepts_response_payload":false,"retry_attempt":0,"retry_reason":"",` +
		`"payload":{"token":"x","team_id":"T1","api_app_id":"A1","type":"event_callback","event_id":"` + eventID + `","event_time":1690000000,` +
		`"authorizations":[{"enterprise_id":null,"team_id":"T1","user_id":"UBOT","is_bot":true,"is_enterprise_install":false}],` +
		`"event":` + event + `}}`
}

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func TestInbound(t *testing.T) {
	tests := []struct {
		name    string
		frame   string
		thread  bool // reply_in_thread
		want    *message.Inbound
		skip    string // substring of the skip reason
		invalid bool
	}{
		{
			name:  "direct message",
			frame: eventEnvelope("Ev1", `{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"hello","ts":"1.1","event_ts":"1.1"}`),
			want:  &message.Inbound{EventID: "Ev1", ChatID: "D1", ChatType: message.ChatDirect, SenderID: "U1", MessageID: "1.1", Text: "hello"},
		},
		{
			name:   "direct message is not threaded by reply_in_thread",
			frame:  eventEnvelope("Ev1", `{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"hello","ts":"1.1"}`),
			thread: true,
			want:   &message.Inbound{EventID: "Ev1", ChatID: "D1", ChatType: message.ChatDirect, SenderID: "U1", MessageID: "1.1", Text: "hello"},
		},
		{
			name:  "direct message in a thread",
			frame: eventEnvelope("Ev2", `{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"more","ts":"1.5","thread_ts":"1.1"}`),
			want:  &message.Inbound{EventID: "Ev2", ChatID: "D1", ChatType: message.ChatDirect, ThreadID: "1.1", SenderID: "U1", MessageID: "1.5", Text: "more"},
		},
		{
			name: "file share: the text is the caption, files are attachments",
			frame: eventEnvelope("Ev3", `{"type":"message","subtype":"file_share","channel":"D1","channel_type":"im","user":"U1","text":"see file","ts":"1.1","files":[`+
				`{"id":"F1","name":"shot.png","mimetype":"image/png","filetype":"png","size":84000,"mode":"hosted","url_private":"https://files.slack.com/files-pri/T1-F1/shot.png","url_private_download":"https://files.slack.com/files-pri/T1-F1/download/shot.png","original_w":1280,"original_h":720},`+
				`{"id":"F2","name":"audio_message.webm","mimetype":"audio/webm","subtype":"slack_audio","duration_ms":4500,"url_private":"https://files.slack.com/files-pri/T1-F2/audio_message.webm"},`+
				`{"id":"F3","title":"report","mimetype":"application/pdf","url_private_download":"https://files.slack.com/files-pri/T1-F3/download/report.pdf"},`+
				`{"id":"F4","mimetype":"video/quicktime","url_private_download":"https://files.slack.com/files-pri/T1-F4/download/v.mov"},`+
				`{"id":"F5","mode":"hidden_by_limit"},{"id":"F6","mode":"file_access","file_access":"check_file_info"},`+
				`{"id":"F7","mode":"external","is_external":true,"url_private":"https://docs.example/x"},{"id":"F8","mode":"tombstone"}]}`),
			want: &message.Inbound{EventID: "Ev3", ChatID: "D1", ChatType: message.ChatDirect, SenderID: "U1", MessageID: "1.1", Text: "see file",
				Attachments: []message.Attachment{
					{Kind: message.MediaImage, Ref: "https://files.slack.com/files-pri/T1-F1/download/shot.png", Name: "shot.png", MIME: "image/png", Size: 84000, Width: 1280, Height: 720, Meta: map[string]string{metaFileID: "F1"}},
					{Kind: message.MediaVoice, Ref: "https://files.slack.com/files-pri/T1-F2/audio_message.webm", Name: "audio_message.webm", MIME: "audio/webm", Duration: 4, Meta: map[string]string{metaFileID: "F2"}},
					{Kind: message.MediaFile, Ref: "https://files.slack.com/files-pri/T1-F3/download/report.pdf", Name: "report", MIME: "application/pdf", Meta: map[string]string{metaFileID: "F3"}},
					{Kind: message.MediaVideo, Ref: "https://files.slack.com/files-pri/T1-F4/download/v.mov", MIME: "video/quicktime", Meta: map[string]string{metaFileID: "F4"}},
				},
				Unsupported: []string{"hidden_file", "slack_connect_file", "external_file", "deleted_file"}},
		},
		{
			name:  "mention in a channel, mention stripped, entities decoded",
			frame: eventEnvelope("Ev4", `{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT> is 1 &lt; 2 &amp;&amp; 3 &gt; 2?","ts":"2.1"}`),
			want:  &message.Inbound{EventID: "Ev4", ChatID: "C1", ChatType: message.ChatChannel, SenderID: "U1", MessageID: "2.1", Text: "is 1 < 2 && 3 > 2?"},
		},
		{
			name:   "top-level mention with reply_in_thread opens a thread",
			frame:  eventEnvelope("Ev5", `{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT> hi","ts":"2.1"}`),
			thread: true,
			want:   &message.Inbound{EventID: "Ev5", ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "2.1", SenderID: "U1", MessageID: "2.1", Text: "hi"},
		},
		{
			name:   "mention inside a thread keeps the thread",
			frame:  eventEnvelope("Ev6", `{"type":"app_mention","channel":"C1","user":"U1","text":"again <@UBOT|herald> please","ts":"2.9","thread_ts":"2.1"}`),
			thread: true,
			want:   &message.Inbound{EventID: "Ev6", ChatID: "C1", ChatType: message.ChatChannel, ThreadID: "2.1", SenderID: "U1", MessageID: "2.9", Text: "again please"},
		},
		{
			name:  "mention in a private channel is a group",
			frame: eventEnvelope("Ev7", `{"type":"app_mention","channel":"G1","user":"U1","text":"<@UBOT> x <@U2> y","ts":"3.1"}`),
			want:  &message.Inbound{EventID: "Ev7", ChatID: "G1", ChatType: message.ChatGroup, SenderID: "U1", MessageID: "3.1", Text: "x <@U2> y"},
		},
		{
			name: "mention without authorizations strips the leading mention",
			frame: `{"envelope_id":"e","type":"events_api","payload":{"type":"event_callback","event_id":"Ev8",` +
				`"event":{"type":"app_mention","channel":"C1","user":"U1","text":"<@UOTHERBOT> do it","ts":"3.2"}}}`,
			want: &message.Inbound{EventID: "Ev8", ChatID: "C1", ChatType: message.ChatChannel, SenderID: "U1", MessageID: "3.2", Text: "do it"},
		},
		{
			name:  "bot message",
			frame: eventEnvelope("Ev9", `{"type":"message","channel":"D1","channel_type":"im","bot_id":"B1","user":"UBOT","text":"echo","ts":"1.2"}`),
			skip:  "bot",
		},
		{
			name:  "edit",
			frame: eventEnvelope("Ev10", `{"type":"message","subtype":"message_changed","channel":"D1","channel_type":"im","message":{"text":"x"},"ts":"1.3"}`),
			skip:  "message_changed",
		},
		{
			name:  "channel message without mention",
			frame: eventEnvelope("Ev11", `{"type":"message","channel":"C1","channel_type":"channel","user":"U1","text":"<@UBOT> hi","ts":"1.4"}`),
			skip:  "channel message",
		},
		{
			name:  "group DM message",
			frame: eventEnvelope("Ev12", `{"type":"message","channel":"G2","channel_type":"mpim","user":"U1","text":"hi","ts":"1.4"}`),
			skip:  "channel message",
		},
		{
			name:  "mention in a direct message",
			frame: eventEnvelope("Ev13", `{"type":"app_mention","channel":"D1","user":"U1","text":"<@UBOT> hi","ts":"1.4"}`),
			skip:  "direct message",
		},
		{
			name:  "other event type with unusual fields",
			frame: eventEnvelope("Ev14", `{"type":"user_change","user":{"id":"U1"}}`),
			skip:  "user_change",
		},
		{
			name:  "interactive without herald's button",
			frame: `{"envelope_id":"e","type":"interactive","payload":{"type":"block_actions","actions":[{"action_id":"x","value":"v"}]}}`,
			skip:  "without a button of herald's",
		},
		{
			name:  "interactive view submission",
			frame: `{"envelope_id":"e","type":"interactive","payload":{"type":"view_submission"}}`,
			skip:  "interactive payload type view_submission",
		},
		{
			name:  "url verification payload",
			frame: `{"envelope_id":"e","type":"events_api","payload":{"type":"url_verification","challenge":"c"}}`,
			skip:  "url_verification",
		},
		{
			name: "slash command",
			frame: `{"envelope_id":"e1","type":"slash_commands","accepts_response_payload":true,"payload":{"command":"/new","text":" fresh &amp; clean ",` +
				`"channel_id":"C1","channel_name":"general","user_id":"U1","user_name":"ann","trigger_id":"trig1","response_url":"https://hooks.slack.com/x"}}`,
			want: &message.Inbound{EventID: "slash:trig1", ChatID: "C1", ChatType: message.ChatChannel, SenderID: "U1", SenderName: "ann", Text: "/new fresh & clean"},
		},
		{
			name:  "slash command in a direct message",
			frame: `{"envelope_id":"e2","type":"slash_commands","payload":{"command":"/stop","text":"","channel_id":"D1","channel_name":"directmessage","user_id":"U1"}}`,
			want:  &message.Inbound{EventID: "slash:e2", ChatID: "D1", ChatType: message.ChatDirect, SenderID: "U1", Text: "/stop"},
		},
		{name: "event is not an object", frame: eventEnvelope("Ev15", `"message"`), invalid: true},
		{name: "message with a non-string user", frame: eventEnvelope("Ev16", `{"type":"message","channel":"D1","channel_type":"im","user":{"id":1},"ts":"1"}`), invalid: true},
		{name: "payload is not an object", frame: `{"envelope_id":"e","type":"events_api","payload":[1]}`, invalid: true},
		{name: "slash command without command", frame: `{"envelope_id":"e","type":"slash_commands","payload":{"text":"x"}}`, invalid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, err := decodeEnvelope([]byte(tt.frame))
			if err != nil {
				t.Fatalf("decodeEnvelope: %v", err)
			}
			m := mapper{platform: "slack", replyInThread: tt.thread}
			got, skip, err := m.inbound(env, now)
			switch {
			case tt.invalid:
				if !errors.Is(err, errMalformed) {
					t.Fatalf("inbound error = %v, want malformed", err)
				}
				return
			case err != nil:
				t.Fatalf("inbound: %v", err)
			case tt.skip != "":
				if got != nil || !strings.Contains(skip, tt.skip) {
					t.Fatalf("inbound = %+v, skip %q; want skip containing %q", got, skip, tt.skip)
				}
				return
			case got == nil:
				t.Fatalf("inbound skipped: %s", skip)
			}
			want := *tt.want
			want.Platform, want.ReceivedAt = "slack", now
			if !equalInbound(*got, want) {
				t.Fatalf("inbound\n got %+v\nwant %+v", *got, want)
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
		})
	}
}

func equalInbound(a, b message.Inbound) bool {
	a.Meta, b.Meta = nil, nil
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return string(ja) == string(jb)
}

func TestDecodeEnvelope(t *testing.T) {
	tests := []struct {
		frame string
		want  envelope
		bad   bool
	}{
		{frame: `{"type":"hello","num_connections":2,"debug_info":{"host":"h"}}`, want: envelope{Type: "hello", NumConnections: 2}},
		{frame: `{"type":"disconnect","reason":"refresh_requested"}`, want: envelope{Type: "disconnect", Reason: "refresh_requested"}},
		{frame: `{"type":"events_api","envelope_id":"x","retry_attempt":2,"retry_reason":"timeout"}`, want: envelope{Type: "events_api", EnvelopeID: "x", RetryAttempt: 2, RetryReason: "timeout"}},
		{frame: `{"envelope_id":"x"}`, bad: true},
		{frame: `not json`, bad: true},
		{frame: `{"type":1}`, bad: true},
	}
	for _, tt := range tests {
		got, err := decodeEnvelope([]byte(tt.frame))
		if tt.bad {
			if !errors.Is(err, errMalformed) {
				t.Errorf("decodeEnvelope(%s) error = %v, want malformed", tt.frame, err)
			}
			continue
		}
		got.Payload = nil
		if err != nil || got.Type != tt.want.Type || got.EnvelopeID != tt.want.EnvelopeID || got.Reason != tt.want.Reason ||
			got.NumConnections != tt.want.NumConnections || got.RetryAttempt != tt.want.RetryAttempt || got.RetryReason != tt.want.RetryReason {
			t.Errorf("decodeEnvelope(%s) = %+v, %v; want %+v", tt.frame, got, err, tt.want)
		}
	}
}

func TestCleanText(t *testing.T) {
	tests := []struct {
		in      string
		mention bool
		want    string
	}{
		{"<@UBOT> hi", true, "hi"},
		{"hi <@UBOT>", false, "hi"},
		{"a <@UBOT> <@UBOT> b", false, "a b"},
		{"a<@UBOT>b", false, "a b"},
		{"<@UBOT|herald>: status?", true, ": status?"},
		{"<@UBOT2> not me", false, "<@UBOT2> not me"},
		{"<@UBOT unterminated", false, "<@UBOT unterminated"},
		{"<@UBOT|no end", false, "<@UBOT|no end"},
		{"line1\n<@UBOT>\nline2", false, "line1\n\nline2"},
		{"&lt;b&gt; &amp;amp;", false, "<b> &amp;"},
		{"  ", false, ""},
	}
	for _, tt := range tests {
		if got := cleanText(tt.in, []string{"UBOT"}, tt.mention); got != tt.want {
			t.Errorf("cleanText(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	for _, s := range []string{"plain", "a < b & c > d", "&amp; literal", "<@U1>", ""} {
		if got := unescape(escape(s)); got != s {
			t.Errorf("unescape(escape(%q)) = %q", s, got)
		}
		if e := escape(s); strings.ContainsAny(strings.ReplaceAll(strings.ReplaceAll(strings.ReplaceAll(e, "&amp;", ""), "&lt;", ""), "&gt;", ""), "<>&") {
			t.Errorf("escape(%q) = %q leaves a control character", s, e)
		}
	}
}

func TestChatType(t *testing.T) {
	tests := []struct {
		channelType, channel string
		want                 message.ChatType
	}{
		{"im", "D1", message.ChatDirect},
		{"mpim", "G1", message.ChatGroup},
		{"group", "G1", message.ChatGroup},
		{"channel", "C1", message.ChatChannel},
		{"", "D1", message.ChatDirect},
		{"", "G1", message.ChatGroup},
		{"", "C1", message.ChatChannel},
		{"", "", message.ChatChannel},
	}
	for _, tt := range tests {
		if got := chatType(tt.channelType, tt.channel); got != tt.want {
			t.Errorf("chatType(%q, %q) = %q, want %q", tt.channelType, tt.channel, got, tt.want)
		}
	}
}

// FuzzEnvelope feeds arbitrary frames through the reader's parsing and the
// mapping: nothing may panic, a mapped message must pass Validate unless
// it lacks a field Slack should have sent, and the bot's mention never
// survives.
func FuzzEnvelope(f *testing.F) {
	seeds := []string{
		`{"type":"hello","num_connections":1}`,
		`{"type":"disconnect","reason":"warning"}`,
		eventEnvelope("Ev1", `{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"hi","ts":"1.1"}`),
		eventEnvelope("Ev2", `{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT> x &lt;","ts":"1.2","thread_ts":"1.0"}`),
		eventEnvelope("Ev3", `{"type":"message","subtype":"bot_message","bot_id":"B","channel":"D1","channel_type":"im"}`),
		eventEnvelope("", `{"type":"message","channel":"","channel_type":"im","user":"","text":"","ts":""}`),
		`{"envelope_id":"e","type":"slash_commands","payload":{"command":"/new","channel_id":"C1","user_id":"U1","trigger_id":"t"}}`,
		`{"envelope_id":"e","type":"interactive","payload":{}}`,
		`{"envelope_id":"e","type":"interactive","payload":{"type":"block_actions","trigger_id":"t","user":{"id":"U1"},"channel":{"id":"C1"},"container":{"message_ts":"1.2"},"actions":[{"action_id":"herald_button_0","value":"hr1:a:x"}]}}`,
		`{"envelope_id":"e","type":"events_api","payload":null}`,
		`{"type":"events_api","payload":{"type":"event_callback","event":null}}`,
		`{}`, `[]`, `null`, ``,
		// Values a hostile server controls: mention markup in every form,
		// a text far above Slack's limits, a retry of an old event.
		eventEnvelope("Ev4", `{"type":"app_mention","channel":"C1","user":"U1","text":"<@UBOT|herald> <!channel> <!here> <!subteam^S1> <@UBOT>","ts":"1.3"}`),
		eventEnvelope("Ev5", `{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"`+strings.Repeat("y", 70000)+`","ts":"1.4"}`),
		strings.Replace(eventEnvelope("Ev6", `{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"again","ts":"1.5"}`),
			`"retry_attempt":0,"retry_reason":""`, `"retry_attempt":99,"retry_reason":"timeout"`, 1),
	}
	for _, s := range seeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, frame []byte, thread bool) {
		env, err := decodeEnvelope(frame)
		if err != nil {
			if !errors.Is(err, errMalformed) {
				t.Fatalf("decodeEnvelope error %v is not malformed", err)
			}
			return
		}
		m := mapper{platform: "slack", replyInThread: thread}
		msg, skip, err := m.inbound(env, now)
		switch {
		case err != nil:
			if !errors.Is(err, errMalformed) {
				t.Fatalf("inbound error %v is not malformed", err)
			}
			return
		case msg == nil:
			if skip == "" {
				t.Fatal("skipped without a reason")
			}
			return
		}
		if msg.Platform != "slack" || msg.ChatType == "" {
			t.Fatalf("inbound %+v lacks platform or chat type", msg)
		}
		// A user may type "<@UBOT>" literally: Slack sends it as entities.
		literal := bytes.Contains(frame, []byte("&lt;")) || bytes.Contains(frame, []byte("&gt;"))
		if !literal && (strings.Contains(msg.Text, "<@UBOT>") || strings.Contains(msg.Text, "<@UBOT|")) {
			t.Fatalf("bot mention left in %q", msg.Text)
		}
		if msg.Text != strings.TrimSpace(msg.Text) {
			t.Fatalf("text %q not trimmed", msg.Text)
		}
		if err := msg.Validate(); err != nil && !errors.Is(err, message.ErrInvalid) {
			t.Fatalf("Validate error %v is not ErrInvalid", err)
		}
	})
}

func BenchmarkEnvelope(b *testing.B) {
	frame := []byte(eventEnvelope("Ev06ABCDEF", `{"type":"app_mention","channel":"C012AB3CD","user":"U061F7AUR",`+
		`"text":"<@UBOT> summarise the thread above and list the open questions &amp; owners","ts":"1690000000.000200",`+
		`"thread_ts":"1690000000.000100","event_ts":"1690000000.000200","team":"T1",`+
		`"blocks":[{"type":"rich_text","block_id":"b","elements":[{"type":"rich_text_section","elements":[{"type":"user","user_id":"UBOT"},{"type":"text","text":" summarise"}]}]}]}`))
	m := mapper{platform: "slack", replyInThread: true}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	for b.Loop() {
		env, err := decodeEnvelope(frame)
		if err != nil {
			b.Fatal(err)
		}
		msg, _, err := m.inbound(env, now)
		if err != nil || msg == nil {
			b.Fatal(err)
		}
	}
}
