// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Identify is a received op 2.
type Identify struct {
	Token   string
	Intents int
}

// Resume is a received op 6.
type Resume struct {
	Token     string
	SessionID string
	Seq       int64
}

// Heartbeat is a received op 1; Seq is -1 for d=null.
type Heartbeat struct {
	Seq int64
}

type event struct {
	s int64
	t string
	d json.RawMessage
}

type session struct {
	id      string
	seq     int64
	log     []event
	invalid bool
}

// conn is one gateway websocket on the server side.
type conn struct {
	ws     *websocket.Conn
	remote string
	out    chan frame
	sess   *session // nil until READY or RESUMED is queued
	silent bool     // no heartbeat ACKs
	deaf   bool     // stop reading
	parked bool     // the reader has stopped reading
	closed bool
	// closing: the server sent a close frame; the code read back is the
	// client's echo, not a close of its own.
	closing bool
}

type frame struct {
	data      []byte
	closeCode int
	reason    string
}

func encode(op int, d any, s int64, t string) []byte {
	m := map[string]any{"op": op, "d": d}
	if op == 0 {
		m["s"], m["t"] = s, t
	} else {
		m["s"], m["t"] = nil, nil
	}
	b, _ := json.Marshal(m)
	return b
}

// enqueue queues a frame for c's writer; s.mu held.
func (c *conn) enqueue(f frame) {
	if c.closed || c.closing {
		return
	}
	if f.closeCode != 0 {
		c.closing = true
	}
	select {
	case c.out <- f:
	default: // a client that reads nothing for 4096 frames is broken anyway
	}
}

func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.upgrades++
	s.notify()
	s.mu.Unlock()
	if f, ok := s.Take(Gateway); ok {
		s.serveFault(w, r, f, "")
		return
	}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c := &conn{ws: ws, remote: r.RemoteAddr, out: make(chan frame, 4096)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ws.CloseNow()
		return
	}
	s.wg.Add(1)
	s.conns = append(s.conns, c)
	s.live = c
	c.enqueue(frame{data: encode(10, map[string]any{"heartbeat_interval": float64(s.interval) / float64(time.Millisecond)}, 0, "")})
	s.notify()
	s.mu.Unlock()

	ctx, cancel := context.WithCancel(s.ctx)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writer(ctx, c)
	}()
	err = s.reader(ctx, c)
	s.mu.Lock()
	c.closed = true
	if s.live == c {
		s.live = nil
	}
	if code := websocket.CloseStatus(err); code != -1 && !c.closing {
		s.clientCloses = append(s.clientCloses, int(code))
		if (code == websocket.StatusNormalClosure || code == websocket.StatusGoingAway) && c.sess != nil {
			// Like Discord: closing with 1000/1001 ends the session.
			c.sess.invalid = true
		}
	}
	s.notify()
	s.mu.Unlock()
	cancel()
	ws.CloseNow()
	<-writerDone
	s.wg.Done()
}

func (s *Server) writer(ctx context.Context, c *conn) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.out:
			if f.closeCode != 0 {
				_ = c.ws.Close(websocket.StatusCode(f.closeCode), f.reason)
				return
			}
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			err := c.ws.Write(wctx, websocket.MessageText, f.data)
			cancel()
			if err != nil {
				return
			}
		}
	}
}

type inFrame struct {
	Op int             `json:"op"`
	D  json.RawMessage `json:"d"`
}

func (s *Server) reader(ctx context.Context, c *conn) error {
	for {
		_, data, err := c.ws.Read(ctx)
		if err != nil {
			return err
		}
		s.mu.Lock()
		if c.deaf {
			c.parked = true
			s.notify()
			s.mu.Unlock()
			<-ctx.Done()
			return ctx.Err()
		}
		var f inFrame
		if err := json.Unmarshal(data, &f); err != nil {
			c.enqueue(frame{closeCode: 4002, reason: "decode error"})
			s.mu.Unlock()
			continue
		}
		s.handleFrame(c, f)
		s.notify()
		s.mu.Unlock()
	}
}

// handleFrame acts on one client frame; s.mu held.
func (s *Server) handleFrame(c *conn, f inFrame) {
	switch f.Op {
	case 1:
		hb := Heartbeat{Seq: -1}
		var n int64
		if json.Unmarshal(f.D, &n) == nil {
			hb.Seq = n
		}
		s.heartbeats = append(s.heartbeats, hb)
		if !c.silent {
			c.enqueue(frame{data: encode(11, nil, 0, "")})
		}
	case 2:
		var d struct {
			Token   string `json:"token"`
			Intents int    `json:"intents"`
		}
		_ = json.Unmarshal(f.D, &d)
		s.identifies = append(s.identifies, Identify{Token: d.Token, Intents: d.Intents})
		switch {
		case d.Token != s.Token:
			c.enqueue(frame{closeCode: 4004, reason: "Authentication failed."})
		case s.identifyClose != 0:
			c.enqueue(frame{closeCode: s.identifyClose, reason: closeReasons[s.identifyClose]})
		case c.sess != nil:
			c.enqueue(frame{closeCode: 4005, reason: "Already authenticated."})
		case s.noReady:
		default:
			s.nextSession++
			sess := &session{id: "fake-session-" + strconv.Itoa(s.nextSession)}
			s.sessions[sess.id] = sess
			s.current = sess
			c.sess = sess
			s.appendEvent(sess, "READY", map[string]any{
				"v": 10, "session_id": sess.id, "resume_gateway_url": s.resume,
				"user":        map[string]any{"id": s.BotID, "username": "herald", "bot": true},
				"guilds":      []any{},
				"application": map[string]any{"id": s.BotID},
			})
			for _, e := range s.pending {
				s.appendEvent(sess, e.t, e.d)
			}
			s.pending = nil
		}
	case 6:
		var d struct {
			Token     string `json:"token"`
			SessionID string `json:"session_id"`
			Seq       int64  `json:"seq"`
		}
		_ = json.Unmarshal(f.D, &d)
		s.resumes = append(s.resumes, Resume{Token: d.Token, SessionID: d.SessionID, Seq: d.Seq})
		sess := s.sessions[d.SessionID]
		switch {
		case s.holdResume:
		case d.Token != s.Token:
			c.enqueue(frame{closeCode: 4004, reason: "Authentication failed."})
		case s.rejectResume || sess == nil || sess.invalid:
			c.enqueue(frame{data: encode(9, false, 0, "")})
		case d.Seq > sess.seq || d.Seq < 0:
			c.enqueue(frame{closeCode: 4007, reason: "Invalid seq."})
		default:
			c.sess = sess
			s.current = sess
			for _, e := range sess.log {
				if e.s > d.Seq {
					c.enqueue(frame{data: encode(0, e.d, e.s, e.t)})
				}
			}
			c.enqueue(frame{data: encode(0, nil, sess.seq, "RESUMED")})
		}
	default:
		c.enqueue(frame{closeCode: 4001, reason: "Unknown opcode."})
	}
}

var closeReasons = map[int]string{
	4000: "Unknown error.", 4001: "Unknown opcode.", 4002: "Decode error.", 4003: "Not authenticated.",
	4004: "Authentication failed.", 4005: "Already authenticated.", 4007: "Invalid seq.",
	4008: "Rate limited.", 4009: "Session timed out.", 4010: "Invalid shard.", 4011: "Sharding required.",
	4012: "Invalid API version.", 4013: "Invalid intent(s).", 4014: "Disallowed intent(s).",
}

// appendEvent logs a dispatch in sess and sends it to the connections
// attached to sess; s.mu held.
func (s *Server) appendEvent(sess *session, t string, d any) int64 {
	raw, ok := d.(json.RawMessage)
	if !ok {
		raw, _ = json.Marshal(d)
	}
	sess.seq++
	e := event{s: sess.seq, t: t, d: raw}
	sess.log = append(sess.log, e)
	for _, c := range s.conns {
		if c.sess == sess && !c.closed {
			c.enqueue(frame{data: encode(0, e.d, e.s, e.t)})
		}
	}
	return e.s
}

// Push dispatches event t with data d in the current session and returns
// its sequence number. Without a live connection the event waits in the
// session log for a resume; before any session it waits for the first
// READY (and 0 is returned).
func (s *Server) Push(t string, d any) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notify()
	if s.current == nil {
		raw, _ := json.Marshal(d)
		s.pending = append(s.pending, event{t: t, d: raw})
		return 0
	}
	return s.appendEvent(s.current, t, d)
}

// Msg describes a MESSAGE_CREATE.
type Msg struct {
	ID         string // generated when empty
	ChannelID  string // default "200000000000000001"
	GuildID    string // empty: a direct message
	AuthorID   string // default "300000000000000001"
	AuthorName string
	Bot        bool
	WebhookID  string
	Type       int
	Content    string
	// Mentions lists mentioned user ids.
	Mentions []string
	// ReplyToAuthorID makes the message a reply to a message by that user.
	ReplyToAuthorID string
	// InThread adds the position field Discord sets on thread messages.
	InThread bool
}

// MessageData builds the d of a MESSAGE_CREATE.
func (s *Server) MessageData(m Msg) map[string]any {
	if m.ID == "" {
		s.mu.Lock()
		s.nextEventMsg++
		m.ID = strconv.FormatInt(700000000000000000+s.nextEventMsg, 10)
		s.mu.Unlock()
	}
	m.ChannelID = cmp.Or(m.ChannelID, "200000000000000001")
	m.AuthorID = cmp.Or(m.AuthorID, "300000000000000001")
	m.AuthorName = cmp.Or(m.AuthorName, "ann")
	mentions := []any{}
	for _, id := range m.Mentions {
		mentions = append(mentions, map[string]any{"id": id, "username": "u" + id})
	}
	d := map[string]any{
		"id": m.ID, "type": m.Type, "channel_id": m.ChannelID, "content": m.Content,
		"author":    map[string]any{"id": m.AuthorID, "username": m.AuthorName, "global_name": nil, "bot": m.Bot},
		"mentions":  mentions,
		"timestamp": time.Now().UTC().Format(time.RFC3339),
	}
	if m.GuildID != "" {
		d["guild_id"] = m.GuildID
	}
	if m.WebhookID != "" {
		d["webhook_id"] = m.WebhookID
	}
	if m.ReplyToAuthorID != "" {
		d["type"] = 19
		d["message_reference"] = map[string]any{"message_id": "600000000000000001", "channel_id": m.ChannelID}
		d["referenced_message"] = map[string]any{"id": "600000000000000001", "author": map[string]any{"id": m.ReplyToAuthorID, "username": "x"}}
	}
	if m.InThread {
		d["position"] = 3
	}
	return d
}

// PushMessage dispatches a MESSAGE_CREATE and returns the message id and
// sequence number.
func (s *Server) PushMessage(m Msg) (id string, seq int64) {
	d := s.MessageData(m)
	return d["id"].(string), s.Push("MESSAGE_CREATE", d)
}

// live returns the current connection or an error; s.mu held.
func (s *Server) liveConn() (*conn, error) {
	if s.live == nil || s.live.closed {
		return nil, errors.New("discordtest: no live gateway connection")
	}
	return s.live, nil
}

func (s *Server) onLive(f func(c *conn)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.liveConn()
	if err != nil {
		return err
	}
	f(c)
	s.notify()
	return nil
}

// Reconnect sends op 7 on the live connection.
func (s *Server) Reconnect() error {
	return s.onLive(func(c *conn) { c.enqueue(frame{data: encode(7, nil, 0, "")}) })
}

// InvalidSession sends op 9 with d=resumable on the live connection. With
// resumable false the session is also forgotten.
func (s *Server) InvalidSession(resumable bool) error {
	return s.onLive(func(c *conn) {
		if !resumable && c.sess != nil {
			c.sess.invalid = true
		}
		c.enqueue(frame{data: encode(9, resumable, 0, "")})
	})
}

// ExpireSessions ends every session as Discord does some minutes after a
// connection was lost: a later Resume is answered with op 9 d=false, and
// events pushed meanwhile are never delivered (the next Identify starts a
// new session without them).
func (s *Server) ExpireSessions() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sess := range s.sessions {
		sess.invalid = true
	}
	s.notify()
}

// SessionID returns the id of the current session ("" before the first
// READY).
func (s *Server) SessionID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return ""
	}
	return s.current.id
}

// RequestHeartbeat sends op 1 on the live connection.
func (s *Server) RequestHeartbeat() error {
	return s.onLive(func(c *conn) { c.enqueue(frame{data: encode(1, nil, 0, "")}) })
}

// CloseLive closes the live connection with code (after the frames queued
// before it).
func (s *Server) CloseLive(code int) error {
	return s.onLive(func(c *conn) {
		if code == 4007 || code == 4009 || code == 4003 {
			if c.sess != nil {
				c.sess.invalid = true
			}
		}
		c.enqueue(frame{closeCode: code, reason: closeReasons[code]})
	})
}

// Drop closes the live connection's TCP socket without a close frame.
func (s *Server) Drop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, err := s.liveConn()
	if err != nil {
		return err
	}
	raw := s.raw[c.remote]
	if raw == nil {
		return fmt.Errorf("discordtest: no TCP connection for %s", c.remote)
	}
	raw.Close()
	return nil
}

// Silence stops heartbeat ACKs on the live connection (a zombie link);
// later connections are answered normally.
func (s *Server) Silence() error {
	return s.onLive(func(c *conn) { c.silent = true })
}

// Deafen makes the live connection stop reading after the next client
// frame (it requests one with op 1), so a close handshake is never answered.
// Wait for Deafened before relying on it.
func (s *Server) Deafen() error {
	return s.onLive(func(c *conn) {
		c.deaf = true
		c.enqueue(frame{data: encode(1, nil, 0, "")})
	})
}

// Deafened reports whether a deafened connection has stopped reading.
func (s *Server) Deafened() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		if c.parked {
			return true
		}
	}
	return false
}

// NoReady makes Identify go unanswered (the connection stays up and
// heartbeats are acknowledged).
func (s *Server) NoReady(on bool) { fakeserver.Set(&s.mu, &s.noReady, on) }

// HoldResume makes Resume go unanswered.
func (s *Server) HoldResume(on bool) { fakeserver.Set(&s.mu, &s.holdResume, on) }

// RejectResume answers every Resume with op 9 d=false.
func (s *Server) RejectResume(on bool) { fakeserver.Set(&s.mu, &s.rejectResume, on) }

// CloseOnIdentify makes the server answer Identify by closing with code
// (4004, 4010–4014 …); 0 restores READY.
func (s *Server) CloseOnIdentify(code int) { fakeserver.Set(&s.mu, &s.identifyClose, code) }

// Identifies returns the Identify commands received.
func (s *Server) Identifies() []Identify { return fakeserver.Copy(&s.mu, &s.identifies) }

// Resumes returns the Resume commands received.
func (s *Server) Resumes() []Resume { return fakeserver.Copy(&s.mu, &s.resumes) }

// Heartbeats returns the heartbeats received.
func (s *Server) Heartbeats() []Heartbeat { return fakeserver.Copy(&s.mu, &s.heartbeats) }

// ClientCloses returns the close codes clients sent.
func (s *Server) ClientCloses() []int { return fakeserver.Copy(&s.mu, &s.clientCloses) }

// Connections counts accepted gateway websockets.
func (s *Server) Connections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// Upgrades counts websocket handshake requests, blackholed ones included.
func (s *Server) Upgrades() int { return fakeserver.Get(&s.mu, &s.upgrades) }

// Seq returns the current session's last sequence number.
func (s *Server) Seq() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.current == nil {
		return 0
	}
	return s.current.seq
}

// Live reports whether a gateway connection is attached to a session.
func (s *Server) Live() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.live != nil && !s.live.closed && s.live.sess != nil
}
