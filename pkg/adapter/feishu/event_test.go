// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
)

func frag(id string, sum, seq int, payload string) *pbbp2.Frame {
	return &pbbp2.Frame{Method: pbbp2.MethodData, Headers: []pbbp2.Header{
		{Key: "type", Value: "event"}, {Key: "message_id", Value: id},
		{Key: "sum", Value: strconv.Itoa(sum)}, {Key: "seq", Value: strconv.Itoa(seq)},
	}, Payload: []byte(payload)}
}

func TestReassembler(t *testing.T) {
	t0 := time.Now()
	r := newReassembler(10 * time.Second)

	// Unsplit frames pass through, with or without a sum header.
	if p, ok, _, err := r.add(&pbbp2.Frame{Payload: []byte("x")}, t0); !ok || err != nil || string(p) != "x" {
		t.Fatalf("unsplit: %q %v %v", p, ok, err)
	}
	// Out of order, with a duplicate fragment.
	for i, f := range []*pbbp2.Frame{frag("a", 3, 2, "C"), frag("a", 3, 0, "A"), frag("a", 3, 0, "A")} {
		if _, ok, _, err := r.add(f, t0); ok || err != nil {
			t.Fatalf("fragment %d: complete=%v err=%v", i, ok, err)
		}
	}
	if p, ok, _, err := r.add(frag("a", 3, 1, "B"), t0); !ok || err != nil || string(p) != "ABC" {
		t.Fatalf("complete: %q %v %v", p, ok, err)
	}
	if len(r.sets) != 0 || r.bytes != 0 {
		t.Fatalf("buffer not released: %d sets, %d bytes", len(r.sets), r.bytes)
	}

	// An incomplete set expires after the TTL.
	r.add(frag("b", 2, 0, "half"), t0)
	if _, _, dropped, _ := r.add(&pbbp2.Frame{}, t0.Add(5*time.Second)); dropped != 0 {
		t.Fatal("dropped before the TTL")
	}
	if _, _, dropped, _ := r.add(&pbbp2.Frame{}, t0.Add(11*time.Second)); dropped != 1 || r.bytes != 0 {
		t.Fatalf("dropped %d after the TTL, %d bytes left", dropped, r.bytes)
	}
}

func TestReassemblerRejects(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name string
		pre  []*pbbp2.Frame
		f    *pbbp2.Frame
	}{
		{"sum not a number", nil, &pbbp2.Frame{Headers: []pbbp2.Header{{Key: "sum", Value: "x"}}}},
		{"seq missing", nil, &pbbp2.Frame{Headers: []pbbp2.Header{{Key: "sum", Value: "2"}, {Key: "message_id", Value: "m"}}}},
		{"seq out of range", nil, frag("m", 2, 2, "x")},
		{"negative seq", nil, frag("m", 2, -1, "x")},
		{"no message_id", nil, frag("", 2, 0, "x")},
		{"too many fragments", nil, frag("m", maxFragments+1, 0, "x")},
		{"sum changes", []*pbbp2.Frame{frag("m", 2, 0, "x")}, frag("m", 3, 1, "y")},
		{"too many bytes", []*pbbp2.Frame{frag("m", 3, 0, strings.Repeat("x", maxFragmentBytes/2+1))},
			frag("m", 3, 1, strings.Repeat("y", maxFragmentBytes/2+1))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newReassembler(time.Minute)
			for _, f := range tt.pre {
				if _, _, _, err := r.add(f, t0); err != nil {
					t.Fatal(err)
				}
			}
			if _, ok, _, err := r.add(tt.f, t0); err == nil || ok {
				t.Fatalf("add = complete %v, err %v; want an error", ok, err)
			}
			if len(r.sets) != 0 || r.bytes != 0 {
				t.Errorf("rejected set kept: %d sets, %d bytes", len(r.sets), r.bytes)
			}
		})
	}
}

func TestStripMentions(t *testing.T) {
	ms := []mention{
		{Key: "@_user_1", ID: userID{OpenID: "ou_bot"}, Name: "herald"},
		{Key: "@_user_10", ID: userID{OpenID: "ou_ten"}, Name: "Ten"},
		{Key: "@_user_2", ID: userID{OpenID: "ou_nameless"}},
	}
	tests := []struct {
		text, botID, want string
	}{
		{"@_user_1 hello", "ou_bot", "hello"},
		{"hi @_user_1 there", "ou_bot", "hi there"},
		{"@_user_10 and @_user_1", "ou_bot", "@Ten and"},
		{"@_user_2!", "ou_bot", "@ou_nameless!"},
		{"@_user_1 hello", "", "@herald hello"},
		{"no mentions", "ou_bot", "no mentions"},
	}
	for _, tt := range tests {
		if got := stripMentions(tt.text, ms, tt.botID); got != tt.want {
			t.Errorf("stripMentions(%q, bot %q) = %q, want %q", tt.text, tt.botID, got, tt.want)
		}
	}
	if got := stripMentions("  keep  ", nil, "ou_bot"); got != "  keep  " {
		t.Errorf("without mentions the text must stay as sent, got %q", got)
	}
}

func TestMessageText(t *testing.T) {
	tests := []struct {
		typ, content, want string
		wantErr            bool
	}{
		{"text", `{"text":"hi"}`, "hi", false},
		{"text", `not json`, "", true},
		{"", `{}`, "", true},
		{"image", `{"image_key":"k"}`, "[image]", false},
		{"file", `{"file_key":"k","file_name":"a.pdf"}`, "[file]", false},
		{"post", `{"title":"","content":[[{"tag":"text","text":"a"},{"tag":"emotion","emoji_type":"SMILE"}],[{"tag":"code_block","language":"go","text":"x := 1"}],[{"tag":"hr"}]]}`,
			"a:SMILE:\nx := 1\n---", false},
		{"post", `{"zh_cn":{"title":"T","content":[[{"tag":"at","user_id":"ou_x","user_name":"Bo"},{"tag":"media","file_key":"f"}]]}}`,
			"T\n@Bo[video]", false},
		{"post", `[1]`, "", true},
	}
	for _, tt := range tests {
		got, err := messageText(tt.typ, tt.content)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("messageText(%q, %s) = %q, %v; want %q, error %v", tt.typ, tt.content, got, err, tt.want, tt.wantErr)
		}
	}
}
