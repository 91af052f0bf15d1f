// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/secret"
)

// The fuzz targets of this file run their seeds with go test; `make fuzz`
// explores further. The seeds in testdata/fuzz are hostile inputs found
// before, named after what they reproduce.

// fragOp is one fragment frame of FuzzReassemble, encoded in the fuzz input
// as 6 bytes followed by the payload:
//
//	id (2 bytes), sum, seq, flags, payload length
//
// sum 0 omits the header, 0xfe is maxFragments+1 and 0xff is not a number;
// seq 0xff omits the header and 0xfe is -1. flags: the low nibble advances
// the clock by that many seconds before the frame, bit 4 wraps the frame in
// 64 KiB of other headers (a small fragment in a large websocket message),
// bit 5 leaves message_id out. Only the first maxBigOps frames are made
// large and only the first maxFragOps are used, which keeps one run within
// a few hundred milliseconds.
type fragOp struct {
	id          string
	sum, seq    int
	sumRaw      string // the sum header when not a number
	advance     time.Duration
	big, noID   bool
	payload     []byte
	hasSum      bool
	hasSeq      bool
	sumIsNumber bool
}

const (
	fragOpHeader = 6
	maxFragOps   = 4096
	maxBigOps    = 256
)

var bigHeader = pbbp2.Header{Key: pbbp2.HeaderTraceID, Value: strings.Repeat("t", 64<<10)}

func parseFragOps(data []byte) []fragOp {
	var ops []fragOp
	big := 0
	for len(data) >= fragOpHeader && len(ops) < maxFragOps {
		h := data[:fragOpHeader]
		data = data[fragOpHeader:]
		n := min(int(h[5]), len(data))
		op := fragOp{
			id:      strconv.Itoa(int(binary.BigEndian.Uint16(h[0:2]))),
			advance: time.Duration(h[4]&0x0f) * time.Second,
			big:     h[4]&0x10 != 0 && big < maxBigOps,
			noID:    h[4]&0x20 != 0,
			payload: data[:n],
		}
		data = data[n:]
		if op.big {
			big++
		}
		switch h[2] {
		case 0:
		case 0xfe:
			op.hasSum, op.sumIsNumber, op.sum = true, true, maxFragments+1
		case 0xff:
			op.hasSum, op.sumRaw = true, "x"
		default:
			op.hasSum, op.sumIsNumber, op.sum = true, true, int(h[2])
		}
		switch h[3] {
		case 0xff:
		case 0xfe:
			op.hasSeq, op.seq = true, -1
		default:
			op.hasSeq, op.seq = true, int(h[3])
		}
		ops = append(ops, op)
	}
	return ops
}

func encodeFragOps(ops ...[]byte) []byte { return bytes.Join(ops, nil) }

// fragOpBytes encodes one fragOp; sum and seq as in fragOp.
func fragOpBytes(id uint16, sum, seq, flags byte, payload string) []byte {
	b := binary.BigEndian.AppendUint16(nil, id)
	return append(append(b, sum, seq, flags, byte(len(payload))), payload...)
}

// frame encodes op the way the platform would and decodes it as the read
// loop does, so that the payload is a slice of the whole websocket message,
// which is returned too.
func (op *fragOp) frame(t *testing.T) (*pbbp2.Frame, []byte) {
	hs := []pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypeEvent}}
	if !op.noID {
		hs = append(hs, pbbp2.Header{Key: pbbp2.HeaderMessageID, Value: op.id})
	}
	if op.hasSum {
		v := op.sumRaw
		if op.sumIsNumber {
			v = strconv.Itoa(op.sum)
		}
		hs = append(hs, pbbp2.Header{Key: pbbp2.HeaderSum, Value: v})
	}
	if op.hasSeq {
		hs = append(hs, pbbp2.Header{Key: pbbp2.HeaderSeq, Value: strconv.Itoa(op.seq)})
	}
	if op.big {
		hs = append(hs, bigHeader)
	}
	msg := (&pbbp2.Frame{Method: pbbp2.MethodData, Headers: hs, Payload: op.payload}).Marshal()
	f, err := pbbp2.Unmarshal(msg)
	if err != nil {
		t.Fatalf("re-decoding a fragment: %v", err)
	}
	return f, msg
}

// modelSet is what FuzzReassemble expects the reassembler to hold for one
// message_id.
type modelSet struct {
	sum   int
	parts map[int][]byte
	first time.Time
}

// FuzzReassemble feeds a sequence of fragment frames (see fragOp), after
// flood incomplete sets, to the reassembler and compares it with a model of the protocol: a fragmented
// event is complete once every seq of [0, sum) arrived, the payload is the
// fragments in seq order (a repeated seq replaces the earlier one), sets
// disagreeing on sum are dropped, and incomplete sets are dropped once older
// than the TTL. Each websocket message is overwritten once handled, so a
// fragment kept by reference instead of copied shows as a corrupt event.
// Throughout, malformed headers are errors, never panics, and the bytes
// held stay within maxFragmentBytes.
//
// The model is exact while at most 8 message_ids are in play; beyond that
// (a flood of incomplete sets) only the invariants are checked, so that a
// cap on the number of sets keeps them true.
func FuzzReassemble(f *testing.F) {
	f.Add(encodeFragOps(fragOpBytes(1, 3, 2, 0, "C"), fragOpBytes(1, 3, 0, 0, "A"), fragOpBytes(1, 3, 0, 0, "A"), fragOpBytes(1, 3, 1, 0, "B")), uint16(0))
	f.Add(encodeFragOps(fragOpBytes(1, 0, 0xff, 0, `{"schema":"2.0"}`), fragOpBytes(2, 1, 0, 0, "x")), uint16(0))
	f.Add(encodeFragOps(fragOpBytes(1, 2, 0, 0, "half"), fragOpBytes(2, 2, 0, 5, "a"), fragOpBytes(3, 2, 0, 6, "b"), fragOpBytes(2, 2, 1, 0, "c")), uint16(0))
	f.Add(encodeFragOps(fragOpBytes(1, 2, 0, 0, "x"), fragOpBytes(1, 3, 1, 0, "y"), fragOpBytes(1, 3, 0, 0, "z")), uint16(0))
	f.Add(encodeFragOps(fragOpBytes(1, 0xff, 0, 0, "x"), fragOpBytes(1, 0xfe, 0, 0, "x"), fragOpBytes(1, 2, 0xfe, 0, "x"),
		fragOpBytes(1, 2, 2, 0, "x"), fragOpBytes(1, 2, 0xff, 0, "x"), fragOpBytes(1, 2, 0, 0x20, "x")), uint16(0))
	f.Add(encodeFragOps(fragOpBytes(7, 2, 0, 0, ""), fragOpBytes(7, 2, 1, 0, "")), uint16(0))
	// Hostile server: 1-byte fragments, each in a 64 KiB websocket message.
	var tiny [][]byte
	for seq := range 64 {
		tiny = append(tiny, fragOpBytes(9, 64, byte(seq), 0x10, "z"))
	}
	f.Add(encodeFragOps(tiny...), uint16(0))
	// Hostile server: a flood of incomplete fragment sets, then a set that
	// completes.
	f.Add(encodeFragOps(fragOpBytes(1, 2, 1, 0, "b"), fragOpBytes(1, 2, 0, 0, "a")), uint16(2048))

	const ttl = 10 * time.Second
	f.Fuzz(func(t *testing.T, data []byte, flood uint16) {
		ops := parseFragOps(data)
		r := newReassembler(ttl)
		now := time.Unix(1700000000, 0)
		model := map[string]*modelSet{}
		ids := map[string]bool{}
		// flood incomplete sets first (at most 2048, which keeps one run
		// short), under message_ids the ops never use.
		for i := range int(flood) % 2049 {
			op := fragOp{id: "flood-" + strconv.Itoa(i), sum: maxFragments, hasSum: true, sumIsNumber: true, hasSeq: true, payload: []byte("p")}
			fr, _ := op.frame(t)
			if _, complete, _, err := r.add(fr, now); complete || err != nil {
				t.Fatalf("flood set %d: complete=%v, %v", i, complete, err)
			}
			ids[op.id] = true
			model[op.id] = &modelSet{sum: op.sum, parts: map[int][]byte{0: op.payload}, first: now}
		}
		for i, op := range ops {
			now = now.Add(op.advance)
			if !op.noID {
				ids[op.id] = true
			}
			// The model is exact while few message_ids are in play; past
			// that only the invariants below are checked.
			exact := len(ids) <= 8
			wantDropped := 0
			if exact {
				for id, s := range model {
					if now.Sub(s.first) > ttl {
						delete(model, id)
						wantDropped++
					}
				}
			}
			fr, msg := op.frame(t)
			payload, complete, dropped, err := r.add(fr, now)
			if dropped < 0 || (exact && dropped != wantDropped) {
				t.Fatalf("op %d: dropped %d sets, want %d", i, dropped, wantDropped)
			}
			if r.bytes < 0 || r.bytes > maxFragmentBytes {
				t.Fatalf("op %d: %d bytes held, limit %d", i, r.bytes, maxFragmentBytes)
			}
			if err != nil && (complete || payload != nil) {
				t.Fatalf("op %d: error %v with complete=%v", i, err, complete)
			}
			single := !op.hasSum || (op.sumIsNumber && op.sum <= 1)
			if single && (err != nil || !complete || !bytes.Equal(payload, op.payload)) {
				t.Fatalf("op %d: unfragmented frame gave %q, %v, %v", i, payload, complete, err)
			}
			// The read loop's buffer is the websocket message: what the
			// reassembler keeps must not point into it (a 1-byte fragment
			// would pin the whole message, and a reused buffer would
			// corrupt the event).
			for j := range msg {
				msg[j] = 0xa5
			}
			switch {
			case single:
				continue
			case !op.sumIsNumber, op.sum > maxFragments, !op.hasSeq, op.seq < 0, op.seq >= op.sum, op.noID:
				if err == nil {
					t.Fatalf("op %d: malformed fragment headers accepted (%+v)", i, op)
				}
				continue
			case !exact:
				if complete && len(payload) > 255*op.sum {
					t.Fatalf("op %d: payload of %d bytes from %d fragments", i, len(payload), op.sum)
				}
				continue
			}
			s := model[op.id]
			if s != nil && s.sum != op.sum {
				delete(model, op.id)
				if err == nil {
					t.Fatalf("op %d: sum changed from %d to %d without an error", i, s.sum, op.sum)
				}
				continue
			}
			if err != nil {
				t.Fatalf("op %d: %v", i, err)
			}
			if s == nil {
				s = &modelSet{sum: op.sum, parts: map[int][]byte{}, first: now}
				model[op.id] = s
			}
			s.parts[op.seq] = op.payload
			if len(s.parts) < s.sum {
				if complete {
					t.Fatalf("op %d: complete with %d of %d fragments", i, len(s.parts), s.sum)
				}
				continue
			}
			var want []byte
			for seq := range s.sum {
				want = append(want, s.parts[seq]...)
			}
			if !complete || !bytes.Equal(payload, want) {
				t.Fatalf("op %d: got %q complete=%v, want %q", i, payload, complete, want)
			}
			delete(model, op.id)
		}
		if len(ids) <= 8 && len(r.sets) != len(model) {
			t.Fatalf("%d sets held, want %d", len(r.sets), len(model))
		}
	})
}

// fuzzAdapter is an adapter that never touches the network: the bot's
// open_id is known, or unknown with the lookup not due again.
func fuzzAdapter(f *testing.F) *Adapter {
	path := filepath.Join(f.TempDir(), "app_secret")
	if err := os.WriteFile(path, []byte("test-secret\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	conf := newConfig(DomainFeishu)
	conf.AppID = "cli_test"
	conf.AppSecret = secret.Ref{File: path}
	conf.BaseURL = "http://127.0.0.1:1" // never dialled: see botKnown below
	a, err := New(conf, adapter.Env{Name: "feishu"})
	if err != nil {
		f.Fatal(err)
	}
	a.timing.botInfoRetry = 1000 * time.Hour
	return a
}

// eventPayload is an im.message.receive_v1 event.
func eventPayload(eventID, senderType, chatType, msgType, content, mentions string) []byte {
	return fmt.Appendf(nil, `{"schema":"2.0","header":{"event_id":%q,"event_type":"im.message.receive_v1","app_id":"cli_test"},`+
		`"event":{"sender":{"sender_id":{"open_id":"ou_ann","union_id":"on_ann"},"sender_type":%q},`+
		`"message":{"message_id":"om_1","chat_id":"oc_1","chat_type":%q,"message_type":%q,"content":%q,"mentions":%s}}}`,
		eventID, senderType, chatType, msgType, content, mentions)
}

// FuzzProcess feeds complete event payloads to the event processing that
// follows reassembly. Invariants: no panic; an event is acknowledged unless
// the store failed for a reason other than an invalid message; whatever is
// not stored is counted once as rejected; what is stored is valid, from a
// user, keyed by the event's event_id and addressed to the bot in a group.
func FuzzProcess(f *testing.F) {
	bot := `[{"key":"@_user_1","id":{"open_id":"ou_bot"},"name":"herald"}]`
	for _, p := range [][]byte{
		eventPayload("ev_1", "user", "p2p", "text", `{"text":"hello"}`, `[]`),
		eventPayload("ev_2", "user", "group", "text", `{"text":"@_user_1 hi @_user_10"}`,
			`[{"key":"@_user_1","id":{"open_id":"ou_bot"},"name":"herald"},{"key":"@_user_10","id":{"open_id":"ou_x"},"name":"X"}]`),
		eventPayload("ev_3", "user", "group", "text", `{"text":"no mention"}`, `[]`),
		eventPayload("ev_4", "app", "p2p", "text", `{"text":"from a bot"}`, `[]`),
		eventPayload("ev_5", "user", "p2p", "post", `{"zh_cn":{"title":"T","content":[[{"tag":"at","user_id":"@_user_1"},{"tag":"a","text":"l","href":"https://x"},{"tag":"img"}]]}}`, bot),
		eventPayload("ev_6", "user", "p2p", "post", `[1]`, `[]`),
		eventPayload("ev_7", "user", "p2p", "image", `{"image_key":"k"}`, `[]`),
		eventPayload("ev_8", "user", "p2p", "text", `not json`, `[]`),
		eventPayload("ev_9", "user", "", "text", `{"text":"x"}`, `[]`),
		eventPayload("", "user", "p2p", "text", `{"text":"x"}`, `[]`),
		eventPayload("ev_10", "user", "p2p", "text", `{"text":"   "}`, `[]`),
		eventPayload("ev_11", "user", "p2p", "text", `{"text":"\u0000\ud800"}`, `[]`),
		eventPayload("ev_12", "user", "group", "text", `{"text":"<at user_id=\"all\"></at> everyone"}`, bot),
		eventPayload("ev_13", "user", "p2p", "", `{}`, `null`),
		[]byte(`{"schema":"2.0","encrypt":"AAAA"}`),
		[]byte(`{"schema":"2.0","header":{"event_id":"e","event_type":"im.chat.member.bot.added_v1"},"event":{}}`),
		[]byte(`{"schema":"2.0","header":{"event_id":"e","event_type":"im.message.receive_v1"},"event":[]}`),
		[]byte(`{"header":{"event_id":7}}`),
		[]byte(`not json`),
		[]byte(``),
	} {
		f.Add(p, true, false, false)
		f.Add(p, false, true, true)
	}
	a := fuzzAdapter(f)
	f.Fuzz(func(t *testing.T, payload []byte, botKnown, requireMention, storeFails bool) {
		m := &adaptertest.Metrics{}
		a.Metrics = m
		a.conf.RequireMention = requireMention
		a.bot.openID, a.bot.lastTry = "", time.Now()
		if botKnown {
			a.bot.openID = "ou_bot"
		}
		var stored *message.Inbound
		var storeErr error
		if storeFails {
			storeErr = errors.New("disk full")
		}
		inbox := adapter.InboxFunc(func(_ context.Context, msg *message.Inbound) error {
			if stored != nil {
				t.Fatal("Deliver called twice for one event")
			}
			stored = msg
			if err := msg.Validate(); err != nil {
				return err
			}
			return storeErr
		})
		ack, _ := a.process(context.Background(), inbox, payload, "trace")
		rejected := 0
		for _, n := range m.Rejects {
			rejected += n
		}
		switch {
		case stored == nil:
			if !ack || rejected != 1 {
				t.Fatalf("not stored: ack=%v, %d rejections %v", ack, rejected, m.Rejects)
			}
			return
		case stored.Validate() != nil:
			if !ack || m.Rejections(reasonInvalid) != 1 || rejected != 1 {
				t.Fatalf("invalid message: ack=%v, rejections %v", ack, m.Rejects)
			}
		case storeFails:
			if ack || rejected != 0 {
				t.Fatalf("store failed: ack=%v, rejections %v", ack, m.Rejects)
			}
		default:
			if !ack || rejected != 0 {
				t.Fatalf("stored: ack=%v, rejections %v", ack, m.Rejects)
			}
		}
		var env struct {
			Header struct {
				EventID   string `json:"event_id"`
				EventType string `json:"event_type"`
			} `json:"header"`
			Event messageReceive `json:"event"`
		}
		if err := json.Unmarshal(payload, &env); err != nil {
			t.Fatalf("stored a message from an undecodable payload: %v", err)
		}
		ev := &env.Event
		if env.Header.EventType != eventMessageReceive || stored.EventID != env.Header.EventID || stored.EventID == "" {
			t.Fatalf("stored %+v from header %+v", stored, env.Header)
		}
		if ev.Sender.SenderType != "user" || stored.Platform != "feishu" || stored.MessageID != ev.Message.MessageID ||
			stored.ChatID != ev.Message.ChatID {
			t.Fatalf("stored %+v from event %+v", stored, ev)
		}
		if stored.ChatType == message.ChatGroup && requireMention && !mentionsBot(ev.Message.Mentions, a.bot.openID) {
			t.Fatalf("stored a group message that does not mention the bot: %+v", ev.Message.Mentions)
		}
	})
}

// FuzzClientConfig feeds ClientConfig payloads, as pongs and the bootstrap
// carry them, to the adapter. Whatever the platform sends, the intervals
// herald then uses stay positive and within their bounds (no overflow of
// seconds into a negative time.Duration), the read deadline derived from
// the ping interval stays positive, every reconnect delay lies in
// [0, max(interval, nonce)], and sane values are taken as given.
func FuzzClientConfig(f *testing.F) {
	for _, s := range []string{
		`{"ReconnectCount":-1,"ReconnectInterval":120,"ReconnectNonce":30,"PingInterval":120}`,
		`{"PingInterval":5}`,
		`{"ReconnectCount":3,"ReconnectInterval":1,"ReconnectNonce":0}`,
		`{"PingInterval":0,"ReconnectInterval":-5,"ReconnectNonce":-1}`,
		`{"PingInterval":"120"}`,
		`{"PingInterval":1.5}`,
		`{"PingInterval":null}`,
		`{}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(s))
	}
	a := fuzzAdapter(f)
	f.Fuzz(func(t *testing.T, payload []byte) {
		a.cc = a.timing.defaults
		var w wireClientConfig
		if err := json.Unmarshal(payload, &w); err != nil {
			return
		}
		a.applyConfig(&w)
		cc := a.clientConfig()
		if cc.pingInterval <= 0 || 2*cc.pingInterval+a.timing.readGrace <= 0 {
			t.Fatalf("ping interval %v (read deadline %v) from %s", cc.pingInterval, 2*cc.pingInterval+a.timing.readGrace, payload)
		}
		if cc.reconnectInterval <= 0 || cc.reconnectNonce < 0 {
			t.Fatalf("reconnect interval %v, nonce %v from %s", cc.reconnectInterval, cc.reconnectNonce, payload)
		}
		for _, c := range []struct {
			d      time.Duration
			bounds [2]time.Duration
		}{{cc.pingInterval, pingIntervalBounds}, {cc.reconnectInterval, reconnectIntervalBounds}, {cc.reconnectNonce, reconnectNonceBounds}} {
			if c.d < c.bounds[0] || c.d > c.bounds[1] {
				t.Fatalf("interval %v outside %v in %+v from %s", c.d, c.bounds, cc, payload)
			}
		}
		for n := range 40 {
			if d := a.backoff(n, cc); d < 0 || d > max(cc.reconnectInterval, cc.reconnectNonce) {
				t.Fatalf("backoff(%d) = %v with %+v", n, d, cc)
			}
		}
		for _, c := range []struct {
			v   *float64
			got time.Duration
		}{{w.PingInterval, cc.pingInterval}, {w.ReconnectInterval, cc.reconnectInterval}} {
			if c.v != nil && *c.v >= 1 && *c.v <= 60 && *c.v == math.Trunc(*c.v) && c.got != time.Duration(*c.v)*time.Second {
				t.Fatalf("sane interval %v s became %v", *c.v, c.got)
			}
		}
	})
}

// frameSeq encodes websocket messages for FuzzFrames: each is a 2-byte
// big-endian length and that many bytes.
func frameSeq(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = binary.BigEndian.AppendUint16(b, uint16(len(f)))
		b = append(b, f...)
	}
	return b
}

func splitFrameSeq(data []byte) [][]byte {
	var out [][]byte
	for len(data) >= 2 {
		n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
		out = append(out, data[2:2+n])
		data = data[2+n:]
	}
	return out
}

// ackServer is the platform end of a websocket for FuzzFrames: it decodes
// every binary message it receives and hands it over on acks; a text
// message is a marker, answered on marks once everything before it arrived.
type ackServer struct {
	srv   *httptest.Server
	acks  chan *pbbp2.Frame
	marks chan struct{}
}

func newAckServer(f *testing.F) (*ackServer, *websocket.Conn) {
	s := &ackServer{acks: make(chan *pbbp2.Frame, 1<<16), marks: make(chan struct{}, 1)}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, b, err := c.Read(context.Background())
			if err != nil {
				return
			}
			if typ == websocket.MessageText {
				s.marks <- struct{}{}
				continue
			}
			fr, err := pbbp2.Unmarshal(b)
			if err != nil {
				fr = nil
			}
			s.acks <- fr
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.srv.URL, "http"), nil)
	if err != nil {
		s.srv.Close()
		f.Fatal(err)
	}
	f.Cleanup(func() {
		_ = conn.CloseNow()
		s.srv.Close()
	})
	return s, conn
}

// FuzzFrames feeds sequences of websocket messages to a session's frame
// handling: decoding, pongs, reassembly, event processing and
// acknowledgement, with a loopback websocket peer collecting the acks.
// Invariants: no panic; the intervals herald uses stay positive; every
// event frame that completes an event or can never be reassembled is
// acknowledged exactly once, with the frame's headers, biz_rt and the
// response payload, and no other frame is; only valid messages are stored,
// at most one per acknowledged event.
func FuzzFrames(f *testing.F) {
	ev := func(id string, payload []byte, hs ...pbbp2.Header) []byte {
		return (&pbbp2.Frame{SeqID: 1, LogID: 2, Service: 3, Method: pbbp2.MethodData,
			Headers: append([]pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypeEvent}, {Key: pbbp2.HeaderMessageID, Value: id},
				{Key: pbbp2.HeaderTraceID, Value: "tr"}}, hs...), Payload: payload}).Marshal()
	}
	sum := func(n, seq int) []pbbp2.Header {
		return []pbbp2.Header{{Key: pbbp2.HeaderSum, Value: strconv.Itoa(n)}, {Key: pbbp2.HeaderSeq, Value: strconv.Itoa(seq)}}
	}
	text := eventPayload("ev_1", "user", "p2p", "text", `{"text":"hello"}`, `[]`)
	pong := func(cfg string) []byte {
		return (&pbbp2.Frame{Method: pbbp2.MethodControl, Headers: []pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypePong}}, Payload: []byte(cfg)}).Marshal()
	}
	f.Add(frameSeq(ev("m1", text)))
	f.Add(frameSeq(ev("m2", text[:10], sum(3, 0)...), ev("m2", text[20:], sum(3, 2)...), ev("m2", text[10:20], sum(3, 1)...)))
	f.Add(frameSeq(ev("m3", text, sum(2, 5)...), ev("m4", text, pbbp2.Header{Key: pbbp2.HeaderSum, Value: "x"}), ev("", text, sum(2, 0)...)))
	f.Add(frameSeq(pong(`{"PingInterval":5,"ReconnectInterval":3}`), pong(`not json`), pong(``)))
	f.Add(frameSeq(
		(&pbbp2.Frame{Method: pbbp2.MethodData, Headers: []pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypeCard}}, Payload: []byte(`{}`)}).Marshal(),
		(&pbbp2.Frame{Method: 7, Headers: []pbbp2.Header{{Key: pbbp2.HeaderType, Value: pbbp2.TypeEvent}}}).Marshal(),
		(&pbbp2.Frame{Method: pbbp2.MethodData, Headers: []pbbp2.Header{{Key: pbbp2.HeaderType, Value: "other"}}}).Marshal(),
		[]byte{0x2a, 0x80}, nil))
	f.Add(frameSeq(ev("m5", []byte(`{"schema":"2.0","encrypt":"AAAA"}`)), ev("m6", []byte(`not json`)), ev("m7", nil)))

	a := fuzzAdapter(f)
	a.bot.openID = "ou_bot"
	a.Log = logrus.NewEntry(logrus.New())
	a.Log.Logger.SetOutput(io.Discard)
	a.Log.Logger.SetLevel(logrus.DebugLevel)
	peer, conn := newAckServer(f)
	s := &session{a: a, conn: conn, raw: &rawConn{}, ep: &endpoint{}, cfgChanged: make(chan struct{}, 1)}
	f.Fuzz(func(t *testing.T, data []byte) {
		a.cc = a.timing.defaults
		s.frags = newReassembler(a.conf.FragmentTTL)
		shadow := newReassembler(a.conf.FragmentTTL)
		stored := 0
		inbox := adapter.InboxFunc(func(_ context.Context, m *message.Inbound) error {
			if err := m.Validate(); err != nil {
				t.Fatalf("stored an invalid message: %v", err)
			}
			stored++
			return nil
		})
		var wantAcks []*pbbp2.Frame
		for _, b := range splitFrameSeq(data) {
			now := time.Now()
			s.handleFrame(context.Background(), inbox, b)
			cc := a.clientConfig()
			if cc.pingInterval <= 0 || cc.reconnectInterval <= 0 || cc.reconnectNonce < 0 {
				t.Fatalf("client config %+v", cc)
			}
			fr, err := pbbp2.Unmarshal(b)
			if err != nil || fr.Method != pbbp2.MethodData || fr.Type() != pbbp2.TypeEvent {
				continue
			}
			if _, complete, _, err := shadow.add(fr, now); complete || err != nil {
				wantAcks = append(wantAcks, fr)
			}
		}
		if err := conn.Write(context.Background(), websocket.MessageText, []byte("mark")); err != nil {
			t.Fatal(err)
		}
		select {
		case <-peer.marks:
		case <-time.After(wait):
			t.Fatal("the peer did not receive the marker")
		}
		var got []*pbbp2.Frame
	drain:
		for {
			select {
			case fr := <-peer.acks:
				got = append(got, fr)
			default:
				break drain
			}
		}
		if len(got) != len(wantAcks) || stored > len(wantAcks) {
			t.Fatalf("%d acks for %d completed or malformed event frames, %d stored", len(got), len(wantAcks), stored)
		}
		for i, ack := range got {
			want := wantAcks[i]
			if ack == nil || !bytes.Equal(ack.Payload, ackPayload) || ack.Header(pbbp2.HeaderBizRT) == "" ||
				len(ack.Headers) != len(want.Headers)+1 || ack.SeqID != want.SeqID || ack.Service != want.Service {
				t.Fatalf("ack %d: %+v for %+v", i, ack, want)
			}
			for j, h := range want.Headers {
				if ack.Headers[j] != h {
					t.Fatalf("ack %d header %d: %+v, want %+v", i, j, ack.Headers[j], h)
				}
			}
		}
	})
}
