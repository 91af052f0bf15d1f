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
	if len(r.sets) != 0 || r.bytes != 0 || r.order.Len() != 0 {
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

// checkAccounting verifies the reassembler's invariants: the queue holds
// exactly the sets, oldest first, and bytes is the sum of the sets' sizes,
// each its bookkeeping plus the lengths of its copied payloads.
func checkAccounting(t *testing.T, r *reassembler) {
	t.Helper()
	if r.order.Len() != len(r.sets) {
		t.Fatalf("queue holds %d sets, map %d", r.order.Len(), len(r.sets))
	}
	total := 0
	var prev time.Time
	for e := r.order.Front(); e != nil; e = e.Next() {
		set := e.Value.(*fragSet)
		if r.sets[set.id] != set || set.first.Before(prev) {
			t.Fatalf("queue out of step with the map or out of order at %s", set.id)
		}
		prev = set.first
		size := setOverhead + len(set.id) + set.sum*slotOverhead
		for _, p := range set.parts {
			size += len(p)
		}
		if set.size != size {
			t.Fatalf("set %s counts %d bytes, holds %d", set.id, set.size, size)
		}
		total += size
	}
	if r.bytes != total {
		t.Fatalf("reassembler counts %d bytes, holds %d", r.bytes, total)
	}
}

// TestReassemblerCopiesFragments: a fragment's payload is a slice of its
// whole websocket message; the reassembler keeps a copy of the payload
// alone and counts its real size.
func TestReassemblerCopiesFragments(t *testing.T) {
	msg := make([]byte, 4<<20) // the websocket message the frame came in
	msg[0] = 'A'
	f := frag("m", 2, 0, "")
	f.Payload = msg[:1]
	r := newReassembler(time.Minute)
	if _, ok, _, err := r.add(f, time.Now()); ok || err != nil {
		t.Fatalf("first fragment: complete %v, err %v", ok, err)
	}
	part := r.sets["m"].parts[0]
	if cap(part) != 1 || &part[0] == &msg[0] {
		t.Fatalf("stored fragment has capacity %d and aliases the message: %v", cap(part), &part[0] == &msg[0])
	}
	if want := setOverhead + len("m") + 2*slotOverhead + 1; r.bytes != want {
		t.Fatalf("counted %d bytes, want %d", r.bytes, want)
	}
	checkAccounting(t, r)
	msg[0] = 'X' // the read loop reuses or drops the message
	if p, ok, _, err := r.add(frag("m", 2, 1, "B"), time.Now()); !ok || err != nil || string(p) != "AB" {
		t.Fatalf("complete: %q %v %v", p, ok, err)
	}
}

// TestReassemblerCapsSets: a server opening ever more fragmented events
// without finishing any holds at most maxFragmentSets of them; the oldest
// make room, and the newest completes.
func TestReassemblerCapsSets(t *testing.T) {
	t0 := time.Now()
	r := newReassembler(time.Minute)
	dropped := 0
	const extra = 100
	for i := range maxFragmentSets + extra {
		_, ok, d, err := r.add(frag("s"+strconv.Itoa(i), maxFragments, 0, "x"), t0.Add(time.Duration(i)*time.Microsecond))
		if ok || err != nil {
			t.Fatalf("set %d: complete %v, err %v", i, ok, err)
		}
		dropped += d
	}
	if len(r.sets) != maxFragmentSets || dropped != extra {
		t.Fatalf("%d sets kept, %d dropped; want %d and %d", len(r.sets), dropped, maxFragmentSets, extra)
	}
	if r.sets["s0"] != nil || r.sets["s"+strconv.Itoa(extra)] == nil {
		t.Fatal("the oldest sets were not the ones dropped")
	}
	checkAccounting(t, r)
	if r.bytes > maxFragmentBytes {
		t.Fatalf("%d bytes held, limit %d", r.bytes, maxFragmentBytes)
	}
	// Bytes: big incomplete events crowd out older ones, never the new one.
	big := strings.Repeat("y", maxFragmentBytes/3)
	for i := range 4 {
		if _, _, _, err := r.add(frag("big"+strconv.Itoa(i), 2, 0, big), t0.Add(time.Second)); err != nil {
			t.Fatalf("big set %d: %v", i, err)
		}
		checkAccounting(t, r)
		if r.bytes > maxFragmentBytes || r.sets["big"+strconv.Itoa(i)] == nil {
			t.Fatalf("after big set %d: %d bytes held (limit %d), newest kept: %v", i, r.bytes, maxFragmentBytes, r.sets["big"+strconv.Itoa(i)] != nil)
		}
	}
	if p, ok, _, err := r.add(frag("big3", 2, 1, "z"), t0.Add(time.Second)); !ok || err != nil || len(p) != len(big)+1 {
		t.Fatalf("newest big set: complete %v, err %v, %d bytes", ok, err, len(p))
	}
}

// TestReassemblerExpiresInOrder: sets expire by the arrival of their first
// fragment, front of the queue first; a later fragment does not extend a
// set's life.
func TestReassemblerExpiresInOrder(t *testing.T) {
	t0 := time.Now()
	ttl := 10 * time.Second
	r := newReassembler(ttl)
	for i := range 5 {
		r.add(frag("e"+strconv.Itoa(i), 3, 0, "x"), t0.Add(time.Duration(i)*time.Second))
	}
	r.add(frag("e0", 3, 1, "x"), t0.Add(9*time.Second))
	tick := func(at time.Duration) int {
		_, _, d, _ := r.add(&pbbp2.Frame{Payload: []byte("{}")}, t0.Add(at))
		return d
	}
	if d := tick(ttl); d != 0 {
		t.Fatalf("dropped %d at exactly the TTL", d)
	}
	if d := tick(ttl + 2*time.Second + time.Millisecond); d != 3 || r.sets["e2"] != nil || r.sets["e3"] == nil {
		t.Fatalf("dropped %d sets 2s after the TTL, want e0..e2", d)
	}
	checkAccounting(t, r)
	if d := tick(time.Hour); d != 2 || len(r.sets) != 0 || r.bytes != 0 {
		t.Fatalf("dropped %d, %d sets and %d bytes left", d, len(r.sets), r.bytes)
	}
}

// BenchmarkReassemblerFrame measures one fragment with the reassembler
// full of incomplete sets: with expiry from the queue its cost does not
// grow with the number of sets.
func BenchmarkReassemblerFrame(b *testing.B) {
	t0 := time.Now()
	r := newReassembler(time.Hour)
	for i := range maxFragmentSets {
		r.add(frag("s"+strconv.Itoa(i), 2, 0, "x"), t0)
	}
	f := frag("hot", 2, 0, "payload")
	b.ReportAllocs()
	for b.Loop() {
		r.add(f, t0)
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
		{"image", `{"image_key":"k"}`, "", false},
		{"file", `{"file_key":"k","file_name":"a.pdf"}`, "", false},
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
