// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"math"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
)

// FuzzInbound: any event data is turned into a valid message or skipped
// with a reason, never a panic.
func FuzzInbound(f *testing.F) {
	f.Add(signaltest.Envelope{Source: "+1", SourceUUID: "u", Timestamp: 1, Text: "hi"}.JSON("+2"))
	f.Add(signaltest.Envelope{Source: "+1", SourceUUID: "u", Timestamp: 1, Text: "hi", GroupID: "g"}.JSON("+2"))
	f.Add(`{"envelope":{"source":"+1","timestamp":5,"dataMessage":{"message":"a\ufffcb","mentions":[{"name":"x","start":1,"length":1}]}}}`)
	f.Add(`{"envelope":{"source":"+1","timestamp":5,"dataMessage":{"message":"\ufffc","mentions":[{"start":9223372036854775807,"length":9223372036854775807}]}}}`)
	f.Add(`{"envelope":null}`)
	f.Add(`{"envelope":{"source":"+1","timestamp":5,"dataMessage":{"message":null,"attachments":[{"contentType":"image/png","id":"a.png","size":-1,"width":-3},{"id":null}],"sticker":{},"reaction":null}}}`)
	a, err := New(NewConfig(), adapter.Env{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data string) {
		msg, reason, _ := a.inbound([]byte(data))
		if msg == nil {
			if reason == "" {
				t.Fatal("skipped without a reason")
			}
			return
		}
		if err := msg.Validate(); err != nil {
			t.Fatalf("invalid message %+v: %v", msg, err)
		}
		if !strings.Contains(msg.EventID, ":") {
			t.Fatalf("EventID %q", msg.EventID)
		}
	})
}

func TestExpandMentionsHostile(t *testing.T) {
	for _, m := range []mention{
		{Start: math.MaxInt, Length: math.MaxInt},
		{Start: 1, Length: math.MaxInt},
		{Start: -1, Length: 1},
		{Start: 0, Length: -5},
	} {
		if got := expandMentions("a\uFFFCb", []mention{m}); got != "a\uFFFCb" || !utf8.ValidString(got) {
			t.Errorf("mention %+v: %q", m, got)
		}
	}
}
