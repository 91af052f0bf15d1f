// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

const botID = "100000000000000001"

var seeds = []string{
	`{"op":10,"d":{"heartbeat_interval":41250,"_trace":["gateway-prd"]},"s":null,"t":null}`,
	`{"op":11,"d":null,"s":null,"t":null}`,
	`{"op":1,"d":null}`,
	`{"op":7,"d":null,"s":null,"t":null}`,
	`{"op":9,"d":true,"s":null,"t":null}`,
	`{"op":9,"d":false}`,
	`{"op":0,"s":1,"t":"READY","d":{"v":10,"session_id":"abc","resume_gateway_url":"wss://gateway-us-east1-b.discord.gg","user":{"id":"` + botID + `","username":"herald","bot":true},"guilds":[]}}`,
	`{"op":0,"s":9,"t":"RESUMED","d":null}`,
	`{"op":0,"s":null,"t":"RESUMED","d":null}`,
	`{"op":0,"s":2,"t":"MESSAGE_CREATE","d":{"id":"1","type":0,"channel_id":"2","guild_id":"3","author":{"id":"4","username":"ann","global_name":"Ann"},"content":"<@` + botID + `> hi","mentions":[{"id":"` + botID + `"}]}}`,
	`{"op":0,"s":3,"t":"MESSAGE_CREATE","d":{"id":"5","type":19,"channel_id":"2","author":{"id":"4"},"content":"dm","referenced_message":{"author":{"id":"` + botID + `"}}}}`,
	`{"op":0,"s":4,"t":"MESSAGE_CREATE","d":{"id":"6","type":0,"channel_id":"7","guild_id":"3","author":{"id":"4"},"content":"in thread <@!` + botID + `>","mentions":[{"id":"` + botID + `"}],"position":12}}`,
	`{"op":0,"s":5,"t":"MESSAGE_CREATE","d":{"id":"8","author":{"id":"9","bot":true},"content":"bot"}}`,
	`{"op":0,"s":6,"t":"MESSAGE_CREATE","d":{"id":8,"content":["x"]}}`,
	`{"op":0,"s":7,"t":"GUILD_CREATE","d":{"id":"3","threads":[{"id":"7"},{"id":"10"}]}}`,
	`{"op":0,"s":8,"t":"THREAD_DELETE","d":{"id":"7"}}`,
	`{"op":0,"s":-1,"t":"X","d":{}}`,
	`{"op":0,"d":{}}`,
	`{"d":{}}`,
	`{"op":"0"}`,
	`[]`,
	`null`,
	``,
	`{"op":10,"d":{"heartbeat_interval":-5}}`,
	`{"op":10,"d":{"heartbeat_interval":1e300}}`,
	// Values a hostile gateway controls: an interval whose milliseconds
	// overflow a time.Duration, sequence numbers at and past int64, a
	// mention of @everyone and a message at the text limit.
	`{"op":10,"d":{"heartbeat_interval":9300000000000}}`,
	`{"op":10,"d":{"heartbeat_interval":"41250"}}`,
	`{"op":0,"s":9223372036854775807,"t":"RESUMED","d":null}`,
	`{"op":0,"s":9223372036854775808,"t":"RESUMED","d":null}`,
	`{"op":0,"s":2,"t":"MESSAGE_CREATE","d":{"id":"1","channel_id":"2","author":{"id":"4"},"content":"@everyone <@&5> <@` + botID + `>","mention_everyone":true,"mentions":[{"id":"` + botID + `"}]}}`,
	`{"op":0,"s":2,"t":"MESSAGE_CREATE","d":{"id":"1","channel_id":"2","author":{"id":"4"},"content":"` + strings.Repeat("x", 70000) + `"}}`,
}

func FuzzParsePayload(f *testing.F) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parsePayload(b)
		if err != nil {
			return
		}
		if p.S < 0 {
			t.Fatalf("negative sequence %d accepted", p.S)
		}
		if p.Op == opDispatch && p.T == "" {
			t.Fatal("dispatch without t accepted")
		}
		switch p.Op {
		case opHello:
			if iv, err := parseHello(p); err == nil && (iv < time.Millisecond || iv > 10*time.Minute) {
				t.Fatalf("heartbeat interval %v accepted", iv)
			}
		case opInvalidSession:
			parseInvalidSession(p.D)
		case opDispatch:
			if r, err := parseReady(p.D); err == nil && (r.SessionID == "" || r.User.ID == "") {
				t.Fatal("READY without session or user accepted")
			}
			var tr threadsData
			parseInto(p.D, &tr)
			m, err := parseMessage(p.D)
			if err != nil {
				return
			}
			for _, mention := range []bool{true, false} {
				in := &intake{platform: "discord", botID: botID, requireMention: mention, isThread: func(string) bool { return false }}
				msg, skip := in.inbound(m, time.Unix(0, 0))
				if (msg == nil) == (skip == "") {
					t.Fatalf("inbound returned %v and skip %q", msg, skip)
				}
				if msg == nil {
					continue
				}
				if msg.EventID != m.ID || msg.SenderID != m.Author.ID || msg.Text == "" ||
					strings.Contains(msg.Text, "<@"+botID+">") || m.Author.Bot {
					t.Fatalf("inbound %+v from %+v", msg, m)
				}
				_ = msg.Validate()
			}
		}
	})
}

func TestParsePayload(t *testing.T) {
	for _, tc := range []struct {
		in      string
		op      int
		s       int64
		typ     string
		wantErr bool
	}{
		{in: seeds[0], op: 10},
		{in: seeds[6], op: 0, s: 1, typ: "READY"},
		{in: seeds[8], op: 0, s: 0, typ: "RESUMED"},
		{in: `{"op":0,"s":-1,"t":"X","d":{}}`, wantErr: true},
		{in: `{"op":0,"d":{}}`, wantErr: true},
		{in: `{"d":{}}`, wantErr: true},
		{in: `{"op":"0"}`, wantErr: true},
		{in: ``, wantErr: true},
	} {
		p, err := parsePayload([]byte(tc.in))
		if (err != nil) != tc.wantErr {
			t.Errorf("parsePayload(%s) error %v, want error %v", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && (p.Op != tc.op || p.S != tc.s || p.T != tc.typ) {
			t.Errorf("parsePayload(%s) = op %d s %d t %q", tc.in, p.Op, p.S, p.T)
		}
	}
	p, _ := parsePayload([]byte(seeds[0]))
	if iv, err := parseHello(p); err != nil || iv != 41250*time.Millisecond {
		t.Errorf("hello interval %v, %v", iv, err)
	}
	for _, s := range []string{`{"op":10,"d":{"heartbeat_interval":-5}}`, `{"op":10,"d":{"heartbeat_interval":1e300}}`, `{"op":10,"d":[]}`} {
		p, _ := parsePayload([]byte(s))
		if _, err := parseHello(p); err == nil {
			t.Errorf("parseHello(%s) accepted", s)
		}
	}
	if p, _ := parsePayload([]byte(seeds[6])); true {
		r, err := parseReady(p.D)
		if err != nil || r.SessionID != "abc" || r.User.ID != botID || r.ResumeGatewayURL != "wss://gateway-us-east1-b.discord.gg" {
			t.Errorf("READY = %+v, %v", r, err)
		}
	}
	if _, err := parseReady(json.RawMessage(`{"session_id":""}`)); err == nil {
		t.Error("READY without session id accepted")
	}
	if !parseInvalidSession(json.RawMessage(`true`)) || parseInvalidSession(json.RawMessage(`false`)) || parseInvalidSession(json.RawMessage(`"true"`)) {
		t.Error("op 9 d parsing")
	}
}

func TestOutgoingFrames(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{string(heartbeatFrame(0)), `{"op":1,"d":null}`},
		{string(heartbeatFrame(42)), `{"op":1,"d":42}`},
		{string(resumeFrame("tok", "sess", 7)), `{"op":6,"d":{"token":"tok","session_id":"sess","seq":7}}`},
	} {
		if tc.got != tc.want {
			t.Errorf("frame %s, want %s", tc.got, tc.want)
		}
	}
	var id struct {
		Op int `json:"op"`
		D  struct {
			Token      string            `json:"token"`
			Intents    int               `json:"intents"`
			Properties map[string]string `json:"properties"`
		} `json:"d"`
	}
	if err := json.Unmarshal(identifyFrame("tok", DefaultIntents), &id); err != nil {
		t.Fatal(err)
	}
	if id.Op != 2 || id.D.Token != "tok" || id.D.Intents != 37377 || id.D.Properties["browser"] != "herald" || id.D.Properties["os"] == "" {
		t.Errorf("identify %+v", id)
	}
}

func TestIntake(t *testing.T) {
	in := &intake{platform: "dc", botID: botID, requireMention: true, isThread: func(id string) bool { return id == "thread" }}
	mention := []user{{ID: botID}}
	for _, tc := range []struct {
		name string
		m    messageData
		text string
		skip string
		ct   message.ChatType
		tid  string
	}{
		{name: "dm", m: messageData{ID: "1", ChannelID: "c", Author: user{ID: "u", Username: "ann"}, Content: " hi "}, text: "hi", ct: message.ChatDirect},
		{name: "guild mention", m: messageData{ID: "1", ChannelID: "c", GuildID: "g", Author: user{ID: "u"}, Content: "<@" + botID + "> hi", Mentions: mention}, text: "hi", ct: message.ChatGroup},
		{name: "guild mention in content only", m: messageData{ID: "1", ChannelID: "c", GuildID: "g", Author: user{ID: "u"}, Content: "<@" + botID + "> hi"}, skip: skipNoMention},
		{name: "other user mentioned", m: messageData{ID: "1", ChannelID: "c", GuildID: "g", Author: user{ID: "u"}, Content: "<@5> hi", Mentions: []user{{ID: "5"}}}, skip: skipNoMention},
		{name: "thread", m: messageData{ID: "1", ChannelID: "thread", GuildID: "g", Author: user{ID: "u"}, Content: "<@" + botID + "> x", Mentions: mention}, text: "x", ct: message.ChatGroup, tid: "thread"},
		{name: "bot", m: messageData{ID: "1", ChannelID: "c", Author: user{ID: "u", Bot: true}, Content: "x"}, skip: skipBot},
		{name: "own message", m: messageData{ID: "1", ChannelID: "c", Author: user{ID: botID, Bot: true}, Content: "x"}, skip: skipBot},
		{name: "webhook", m: messageData{ID: "1", ChannelID: "c", Author: user{ID: "u"}, WebhookID: "w", Content: "x"}, skip: skipWebhook},
		{name: "system", m: messageData{ID: "1", Type: 7, ChannelID: "c", Author: user{ID: "u"}, Content: "x"}, skip: skipSystem},
		{name: "only a mention", m: messageData{ID: "1", ChannelID: "c", GuildID: "g", Author: user{ID: "u"}, Content: "<@" + botID + ">", Mentions: mention}, skip: skipEmpty},
		{name: "no text, attachment or sticker", m: messageData{ID: "1", ChannelID: "c", Author: user{ID: "u"}}, skip: skipEmpty},
		{name: "global name wins", m: messageData{ID: "1", ChannelID: "c", Author: user{ID: "u", Username: "ann", GlobalName: "Ann B"}, Content: "x"}, text: "x", ct: message.ChatDirect},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, skip := in.inbound(&tc.m, time.Unix(5, 0))
			if skip != tc.skip {
				t.Fatalf("skip %q, want %q", skip, tc.skip)
			}
			if msg == nil {
				return
			}
			if msg.Text != tc.text || msg.ChatType != tc.ct || msg.ThreadID != tc.tid || msg.Platform != "dc" || msg.EventID != tc.m.ID || msg.MessageID != tc.m.ID {
				t.Errorf("inbound %+v", msg)
			}
			if err := msg.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
			if tc.m.Author.GlobalName != "" && msg.SenderName != tc.m.Author.GlobalName {
				t.Errorf("sender name %q", msg.SenderName)
			}
		})
	}
}

func TestClassifyClose(t *testing.T) {
	for code, c := range closeCodes {
		act, err := classifyClose(code)
		if act != c.act || err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("classifyClose(%d) = %v, %v", code, act, err)
		}
	}
	if act, err := classifyClose(-1); act != actResume || err != nil {
		t.Errorf("no close frame: %v, %v", act, err)
	}
	if act, _ := classifyClose(1006); act != actResume {
		t.Errorf("1006: %v", act)
	}
}

func BenchmarkParseMessageCreate(b *testing.B) {
	frame := []byte(seeds[9])
	in := &intake{platform: "discord", botID: botID, requireMention: true, isThread: func(string) bool { return false }}
	now := time.Now()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		p, err := parsePayload(frame)
		if err != nil {
			b.Fatal(err)
		}
		m, err := parseMessage(p.D)
		if err != nil {
			b.Fatal(err)
		}
		if msg, _ := in.inbound(m, now); msg == nil {
			b.Fatal("skipped")
		}
	}
}

func BenchmarkParseHeartbeatACK(b *testing.B) {
	frame := []byte(seeds[1])
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parsePayload(frame); err != nil {
			b.Fatal(err)
		}
	}
}

func TestInboundMedia(t *testing.T) {
	in := &intake{platform: "dc", botID: botID, requireMention: true}
	const head = `"id":"10","channel_id":"c","author":{"id":"u","username":"ann"}`
	const png = `{"id":"a1","filename":"shot.png","content_type":"image/png","size":84000,"url":"https://cdn.discordapp.com/attachments/c/a1/shot.png?ex=1&is=2&hm=3","proxy_url":"https://media.discordapp.net/x","width":1280,"height":720}`
	for _, tc := range []struct {
		name  string
		raw   string
		text  string
		atts  []message.Attachment
		unsup []string
		skip  string
	}{
		{name: "attachment only", raw: `{` + head + `,"content":"","attachments":[` + png + `]}`,
			atts: []message.Attachment{{Kind: message.MediaImage, Ref: "https://cdn.discordapp.com/attachments/c/a1/shot.png?ex=1&is=2&hm=3", Name: "shot.png", MIME: "image/png", Size: 84000, Width: 1280, Height: 720, Meta: map[string]string{metaAttachmentID: "a1"}}}},
		{name: "caption and file", raw: `{` + head + `,"content":"read this","attachments":[{"id":"a2","filename":"r.pdf","content_type":"application/pdf","size":12,"url":"https://cdn.discordapp.com/r.pdf"}]}`,
			text: "read this", atts: []message.Attachment{{Kind: message.MediaFile, Ref: "https://cdn.discordapp.com/r.pdf", Name: "r.pdf", MIME: "application/pdf", Size: 12, Meta: map[string]string{metaAttachmentID: "a2"}}}},
		{name: "voice message", raw: `{` + head + `,"content":"","flags":8192,"attachments":[{"id":"a3","filename":"voice-message.ogg","content_type":"audio/ogg","size":5000,"url":"https://cdn.discordapp.com/v.ogg","duration_secs":2.4,"waveform":"AAA="}]}`,
			atts: []message.Attachment{{Kind: message.MediaVoice, Ref: "https://cdn.discordapp.com/v.ogg", Name: "voice-message.ogg", MIME: "audio/ogg", Size: 5000, Duration: 3, Meta: map[string]string{metaAttachmentID: "a3"}}}},
		{name: "audio and video", raw: `{` + head + `,"content":"","attachments":[{"id":"a4","filename":"s.mp3","content_type":"audio/mpeg","size":1,"url":"https://cdn.discordapp.com/s.mp3"},{"id":"a5","filename":"v.mp4","content_type":"video/mp4","size":2,"url":"https://cdn.discordapp.com/v.mp4","width":640,"height":480}]}`,
			atts: []message.Attachment{
				{Kind: message.MediaAudio, Ref: "https://cdn.discordapp.com/s.mp3", Name: "s.mp3", MIME: "audio/mpeg", Size: 1, Meta: map[string]string{metaAttachmentID: "a4"}},
				{Kind: message.MediaVideo, Ref: "https://cdn.discordapp.com/v.mp4", Name: "v.mp4", MIME: "video/mp4", Size: 2, Width: 640, Height: 480, Meta: map[string]string{metaAttachmentID: "a5"}},
			}},
		{name: "sticker only", raw: `{` + head + `,"content":"","sticker_items":[{"id":"s","name":"wave","format_type":1}]}`, unsup: []string{"sticker"}},
		{name: "poll", raw: `{` + head + `,"content":"","poll":{"question":{"text":"?"},"answers":[]}}`, unsup: []string{"poll"}},
		{name: "guild attachment without mention", raw: `{` + head + `,"guild_id":"g","content":"","attachments":[` + png + `]}`, skip: skipNoMention},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := parseMessage(json.RawMessage(tc.raw))
			if err != nil {
				t.Fatal(err)
			}
			msg, skip := in.inbound(m, time.Unix(5, 0))
			if skip != tc.skip {
				t.Fatalf("skip %q, want %q", skip, tc.skip)
			}
			if msg == nil {
				return
			}
			if err := msg.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if msg.Text != tc.text || !reflect.DeepEqual(msg.Attachments, tc.atts) || !reflect.DeepEqual(msg.Unsupported, tc.unsup) {
				t.Errorf("got text %q attachments %+v unsupported %v\nwant %q %+v %v", msg.Text, msg.Attachments, msg.Unsupported, tc.text, tc.atts, tc.unsup)
			}
		})
	}
}
