// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
)

// Gateway opcodes (https://docs.discord.com/developers/topics/opcodes-and-status-codes).
const (
	opDispatch       = 0
	opHeartbeat      = 1
	opIdentify       = 2
	opResume         = 6
	opReconnect      = 7
	opInvalidSession = 9
	opHello          = 10
	opHeartbeatACK   = 11
)

// payload is one gateway frame. S is 0 when the frame has no sequence
// number (sequence numbers start at 1).
type payload struct {
	Op int
	D  json.RawMessage
	S  int64
	T  string
}

type wirePayload struct {
	Op *int            `json:"op"`
	D  json.RawMessage `json:"d"`
	S  *int64          `json:"s"`
	T  *string         `json:"t"`
}

var errNoOp = errors.New("no op field")

// parsePayload decodes one gateway frame. It never panics on any input (see
// FuzzParsePayload).
func parsePayload(b []byte) (payload, error) {
	var w wirePayload
	if err := json.Unmarshal(b, &w); err != nil {
		return payload{}, err
	}
	if w.Op == nil {
		return payload{}, errNoOp
	}
	p := payload{Op: *w.Op, D: w.D}
	if w.S != nil {
		if *w.S < 0 {
			return payload{}, fmt.Errorf("negative sequence number %d", *w.S)
		}
		p.S = *w.S
	}
	if w.T != nil {
		p.T = *w.T
	}
	// A dispatch without s (null) is accepted: it just does not move the
	// sequence number.
	if p.Op == opDispatch && p.T == "" {
		return payload{}, errors.New("dispatch without t")
	}
	return p, nil
}

type helloData struct {
	HeartbeatInterval float64 `json:"heartbeat_interval"`
}

// parseHello returns the heartbeat interval of an op 10 frame.
func parseHello(p payload) (time.Duration, error) {
	if p.Op != opHello {
		return 0, fmt.Errorf("expected Hello (op 10), got op %d", p.Op)
	}
	var h helloData
	if err := json.Unmarshal(p.D, &h); err != nil {
		return 0, fmt.Errorf("hello: %w", err)
	}
	// Discord sends about 41 s. Anything outside 1 ms .. 10 min is broken
	// (compared as milliseconds, before a huge value can overflow).
	iv, out := adapter.BoundWait(h.HeartbeatInterval, time.Millisecond, time.Millisecond, 10*time.Minute)
	if out {
		return 0, fmt.Errorf("hello: heartbeat_interval %v ms out of range [1, 600000]", h.HeartbeatInterval)
	}
	return iv, nil
}

type user struct {
	ID         string `json:"id"`
	Username   string `json:"username"`
	GlobalName string `json:"global_name"`
	Bot        bool   `json:"bot"`
}

type readyData struct {
	SessionID        string `json:"session_id"`
	ResumeGatewayURL string `json:"resume_gateway_url"`
	User             user   `json:"user"`
}

func parseReady(d json.RawMessage) (readyData, error) {
	var r readyData
	if err := json.Unmarshal(d, &r); err != nil {
		return r, fmt.Errorf("READY: %w", err)
	}
	if r.SessionID == "" || r.User.ID == "" {
		return r, errors.New("READY: missing session_id or user.id")
	}
	return r, nil
}

// messageData is the part of a message object herald reads.
type messageData struct {
	ID        string `json:"id"`
	Type      int    `json:"type"`
	ChannelID string `json:"channel_id"`
	GuildID   string `json:"guild_id"`
	Author    user   `json:"author"`
	Content   string `json:"content"`
	Mentions  []user `json:"mentions"`
	Flags     int64  `json:"flags"`
	// Attachments, StickerItems and Poll: media (media.go).
	Attachments  []attachmentData `json:"attachments"`
	StickerItems []struct {
		ID string `json:"id"`
	} `json:"sticker_items"`
	Poll      json.RawMessage `json:"poll"`
	WebhookID string          `json:"webhook_id"`
	// Position is only present on messages in threads.
	Position          *int64 `json:"position"`
	ReferencedMessage *struct {
		Author user `json:"author"`
	} `json:"referenced_message"`
}

func parseMessage(d json.RawMessage) (*messageData, error) {
	var m messageData
	if err := json.Unmarshal(d, &m); err != nil {
		return nil, fmt.Errorf("MESSAGE_CREATE: %w", err)
	}
	return &m, nil
}

// channelData is a thread channel (THREAD_CREATE, THREAD_UPDATE,
// THREAD_DELETE).
type channelData struct {
	ID string `json:"id"`
}

// threadsData holds the thread lists of GUILD_CREATE and THREAD_LIST_SYNC.
type threadsData struct {
	Threads []channelData `json:"threads"`
}

// parseInvalidSession returns d of op 9: whether the session is resumable.
// Anything but true counts as false.
func parseInvalidSession(d json.RawMessage) bool {
	var b bool
	_ = json.Unmarshal(d, &b)
	return b
}

// Outgoing frames.

type identifyProps struct {
	OS      string `json:"os"`
	Browser string `json:"browser"`
	Device  string `json:"device"`
}

type identifyData struct {
	Token      string        `json:"token"`
	Intents    int           `json:"intents"`
	Properties identifyProps `json:"properties"`
}

type resumeData struct {
	Token     string `json:"token"`
	SessionID string `json:"session_id"`
	Seq       int64  `json:"seq"`
}

type outFrame struct {
	Op int `json:"op"`
	D  any `json:"d"`
}

func identifyFrame(token string, intents int) []byte {
	b, _ := json.Marshal(outFrame{Op: opIdentify, D: identifyData{
		Token:      token,
		Intents:    intents,
		Properties: identifyProps{OS: runtime.GOOS, Browser: "herald", Device: "herald"},
	}})
	return b
}

func resumeFrame(token, sessionID string, seq int64) []byte {
	b, _ := json.Marshal(outFrame{Op: opResume, D: resumeData{Token: token, SessionID: sessionID, Seq: seq}})
	return b
}

// heartbeatFrame carries the last handled sequence number, null before the
// first one.
func heartbeatFrame(seq int64) []byte {
	if seq <= 0 {
		return []byte(`{"op":1,"d":null}`)
	}
	b := strconv.AppendInt([]byte(`{"op":1,"d":`), seq, 10)
	return append(b, '}')
}

// parseInto decodes d into v, reporting success.
func parseInto(d json.RawMessage, v any) bool { return json.Unmarshal(d, v) == nil }
