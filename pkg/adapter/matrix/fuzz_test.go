// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"encoding/json"
	"testing"
	"time"
)

// FuzzInbound: any event JSON is either turned into a valid message or
// skipped with a reason; nothing panics.
func FuzzInbound(f *testing.F) {
	f.Add(`{"type":"m.room.message","event_id":"$1","sender":"@a:x","content":{"msgtype":"m.text","body":"@herald:x hi"}}`, true)
	f.Add(`{"type":"m.room.message","event_id":"$1","sender":"@a:x","content":{"msgtype":"m.text","body":"hi","m.relates_to":{"rel_type":"m.thread","event_id":"$r"}}}`, false)
	f.Add(`{"event_id":"$1","sender":"@a:x","content":{"m.mentions":{"user_ids":[1,2]}}}`, false)
	f.Add(`{"content":null}`, true)
	c := classifier{platform: "mx", userID: "@herald:x", displayName: "Herald", requireMention: true}
	f.Fuzz(func(t *testing.T, raw string, direct bool) {
		var ev event
		if json.Unmarshal([]byte(raw), &ev) != nil {
			return
		}
		msg, reason := c.inbound("!r:x", &ev, direct, time.Unix(0, 0))
		switch {
		case msg == nil && reason == "":
			t.Fatal("skipped without a reason")
		case msg != nil && reason != "":
			t.Fatalf("a message and a reason %q", reason)
		case msg != nil && (msg.EventID != ev.EventID || msg.SenderID != ev.Sender || msg.SenderID == c.userID):
			t.Fatalf("message %+v from event %+v", msg, ev)
		}
	})
}
