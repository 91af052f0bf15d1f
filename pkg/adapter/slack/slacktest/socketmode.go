// SPDX-License-Identifier: Apache-2.0

package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := s.tickets[ticket]
	delete(s.tickets, ticket)
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid ticket", http.StatusUnauthorized)
		return
	}
	if f, ok := s.Take(Upgrade); ok {
		if f.Kind == fakeserver.KindReject || f.Kind == fakeserver.KindRateLimit {
			http.Error(w, "upgrade refused", f.Status)
			return
		}
		s.answer(w, r, f)
		return
	}
	raw, _ := r.Context().Value(rawConnKey{}).(*zconn)
	if raw == nil {
		http.Error(w, "no connection", http.StatusInternalServerError)
		return
	}
	c := &wsConn{raw: raw}
	ws, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		// Slack's clients send Origin: https://api.slack.com.
		InsecureSkipVerify: true,
		OnPingReceived: func(context.Context, []byte) bool {
			c.pings.Add(1)
			return true
		},
	})
	if err != nil {
		return
	}
	ws.SetReadLimit(1 << 20)
	c.ws = ws
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	defer c.cancel()
	s.mu.Lock()
	s.nextConn++
	c.id = s.nextConn
	s.conns[c.id] = c
	s.all[c.id] = c
	hold := s.holdHello
	s.notify()
	s.mu.Unlock()
	if !hold {
		s.sendHello(c)
	}
	s.wg.Add(1)
	go s.pinger(c)
	s.readAcks(c)
	s.mu.Lock()
	delete(s.conns, c.id)
	s.notify()
	s.mu.Unlock()
}

func (s *Server) sendHello(c *wsConn) {
	s.mu.Lock()
	if c.hello {
		s.mu.Unlock()
		return
	}
	c.hello = true
	n := len(s.conns)
	s.mu.Unlock()
	_ = s.write(c, map[string]any{
		"type":            "hello",
		"num_connections": n,
		"debug_info":      map[string]any{"host": "slacktest", "approximate_connection_time": 18060},
		"connection_info": map[string]any{"app_id": "A1"},
	})
	s.mu.Lock()
	s.hellos++
	s.notify()
	s.mu.Unlock()
}

func (s *Server) write(c *wsConn, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.writeRaw(c, b)
}

func (s *Server) writeRaw(c *wsConn, b []byte) error {
	ctx, cancel := context.WithTimeout(c.ctx, 2*time.Second)
	defer cancel()
	return c.ws.Write(ctx, websocket.MessageText, b)
}

func (s *Server) pinger(c *wsConn) {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
		}
		if c.raw.zombie.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
		if c.ws.Ping(ctx) == nil {
			c.pongs.Add(1)
		}
		cancel()
	}
}

// readAcks reads the client's frames: acknowledgements, and the close
// frame whose status is recorded.
func (s *Server) readAcks(c *wsConn) {
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			s.mu.Lock()
			s.closes[c.id] = websocket.CloseStatus(err)
			s.mu.Unlock()
			_ = c.ws.CloseNow()
			return
		}
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(data, &ack) != nil || ack.EnvelopeID == "" {
			continue
		}
		s.mu.Lock()
		a := Ack{EnvelopeID: ack.EnvelopeID, Conn: c.id}
		for _, d := range s.pending {
			if n, ok := d.envIDs[ack.EnvelopeID]; ok {
				d.acked = true
				a.EventID, a.RetryAttempt = d.eventID, n
			}
		}
		s.acks = append(s.acks, a)
		s.notify()
		s.mu.Unlock()
	}
}

// newest returns the most recent connection that has been sent hello;
// call with s.mu held.
func (s *Server) newest() *wsConn {
	var best *wsConn
	for _, c := range s.conns {
		if c.hello && (best == nil || c.id > best.id) {
			best = c
		}
	}
	return best
}

// send writes delivery d as a new envelope on c (nil: the newest
// connection); it stays pending until acknowledged.
func (s *Server) send(c *wsConn, d *delivery) (string, error) {
	s.mu.Lock()
	if c == nil {
		c = s.newest()
	}
	if c == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("slacktest: no connection")
	}
	s.seq++
	id := fmt.Sprintf("env-%d", s.seq)
	d.envIDs[id] = d.attempt
	d.sentAt = time.Now()
	env := map[string]any{
		"envelope_id":              id,
		"type":                     d.typ,
		"payload":                  d.payload,
		"accepts_response_payload": d.typ != "events_api",
	}
	if d.attempt > 0 {
		env["retry_attempt"] = d.attempt
		env["retry_reason"] = "timeout"
	}
	s.mu.Unlock()
	return id, s.write(c, env)
}

// Disconnect sends {"type":"disconnect","reason":reason} on the newest
// connection. After warning and refresh_requested the server closes that
// connection when DisconnectGrace has passed; after link_disabled at once.
// It returns the connection id.
func (s *Server) Disconnect(reason string) int {
	s.mu.Lock()
	c := s.newest()
	s.mu.Unlock()
	if c == nil {
		panic("slacktest: no connection")
	}
	_ = s.write(c, map[string]any{"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": "slacktest"}})
	grace := s.opts.DisconnectGrace
	if reason == "link_disabled" {
		grace = 0
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(grace)
		defer t.Stop()
		select {
		case <-t.C:
		case <-c.ctx.Done():
			return
		}
		s.closeConn(c)
	}()
	return c.id
}

// closeConn sends a close frame and drops the connection if the client
// has not answered within a second.
func (s *Server) closeConn(c *wsConn) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	case <-s.ctx.Done():
	}
	_ = c.raw.Close()
	<-done
}

// Drop closes every connection abruptly: no close frame.
func (s *Server) Drop() {
	s.mu.Lock()
	var conns []*wsConn
	for _, c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.raw.Close()
	}
}

// Zombie makes the newest connection a dead link whose TCP connection
// stays up: from now on every byte the client sends is dropped unread (no
// pong, no acknowledgement, no answer to a close frame) and nothing
// reaches the client.
// It returns the connection id.
func (s *Server) Zombie() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.newest()
	if c == nil {
		panic("slacktest: no connection")
	}
	c.raw.zombie.Store(true)
	return c.id
}

// Sync pings connection id and waits for the pong. The client answers
// pings from its read loop, so every frame it sent before the pong (an
// acknowledgement, say) has been recorded when Sync returns.
func (s *Server) Sync(ctx context.Context, id int) error {
	s.mu.Lock()
	c := s.conns[id]
	s.mu.Unlock()
	if c == nil {
		return fmt.Errorf("slacktest: no connection %d", id)
	}
	return c.ws.Ping(ctx)
}

// HoldHello makes new connections wait for ReleaseHello before hello.
func (s *Server) HoldHello(hold bool) {
	s.mu.Lock()
	s.holdHello = hold
	s.mu.Unlock()
}

// ReleaseHello sends hello on every connection still waiting for it.
func (s *Server) ReleaseHello() {
	s.mu.Lock()
	s.holdHello = false
	var waiting []*wsConn
	for _, c := range s.conns {
		if !c.hello {
			waiting = append(waiting, c)
		}
	}
	s.mu.Unlock()
	for _, c := range waiting {
		s.sendHello(c)
	}
}

// zlistener wraps accepted connections so that Zombie can cut them off
// without closing them.
type zlistener struct{ net.Listener }

func (l zlistener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &zconn{Conn: c, closed: make(chan struct{})}, nil
}

// zconn is a server-side connection that can turn into a zombie: reads
// swallow the client's bytes and then block until Close, writes vanish.
type zconn struct {
	net.Conn
	zombie    atomic.Bool
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *zconn) Read(p []byte) (int, error) {
	for {
		if c.zombie.Load() {
			<-c.closed
			return 0, net.ErrClosed
		}
		n, err := c.Conn.Read(p)
		if err != nil || !c.zombie.Load() {
			return n, err
		}
		// Became a zombie while this read was waiting: drop what came.
	}
}

func (c *zconn) Write(p []byte) (int, error) {
	if c.zombie.Load() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *zconn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}
