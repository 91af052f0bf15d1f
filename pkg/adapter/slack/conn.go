// SPDX-License-Identifier: Apache-2.0

package slack

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

// conn is one Socket Mode websocket with its reader and pinger goroutines.
type conn struct {
	id   uint64
	host string
	ws   *websocket.Conn
	// raw is the TCP connection under ws. Closing it unblocks every
	// operation on ws, including a Close handshake in progress, which
	// CloseNow would wait for.
	raw    net.Conn
	ctx    context.Context // ends when the connection is dropped
	cancel context.CancelFunc
	log    *logrus.Entry

	hello     chan struct{} // closed on Slack's hello
	helloOnce sync.Once
	helloAt   time.Time // written before hello is closed
	// counted and held are written before hello is closed: the app's
	// Socket Mode connections as Slack counted them in hello, and those
	// herald held open at that moment, this one included.
	counted, held int
	disc          chan string   // disconnect reasons, in order
	done          chan struct{} // closed when the reader has returned
	closing       atomic.Bool   // a close handshake was started

	errOnce sync.Once
	err     error // why the connection ended; read after done
}

// fail records err as the reason the connection ends and drops it.
func (c *conn) fail(err error) {
	c.errOnce.Do(func() { c.err = err })
	c.kill()
}

// kill drops the connection without a close handshake.
func (c *conn) kill() {
	c.cancel()
	_ = c.raw.Close()
}

// linkDisabled drains the disconnect reasons and reports whether
// link_disabled was among them.
func (c *conn) linkDisabled() bool {
	for {
		select {
		case r := <-c.disc:
			if r == reasonLinkDisabled {
				return true
			}
		default:
			return false
		}
	}
}

var connSeq atomic.Uint64

// connect opens one Socket Mode connection: apps.connections.open, the
// websocket handshake and Slack's hello, each bounded by request_timeout
// and by ctx. A non-nil conn comes back only with a nil error or with
// ctx's error (the caller then closes it).
func (a *Adapter) connect(ctx context.Context) (*conn, error) {
	octx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	res, err := a.api.call(octx, "apps.connections.open", a.appToken, nil)
	cancel()
	if err != nil {
		return nil, err
	}
	if res.URL == "" {
		return nil, fmt.Errorf("slack: apps.connections.open: %w: no url in the answer", adapter.ErrTemporary)
	}
	c, err := a.dial(ctx, res.URL)
	if err != nil {
		return nil, err
	}
	t := time.NewTimer(a.conf.RequestTimeout)
	defer t.Stop()
	select {
	case <-c.hello:
		return c, nil
	case <-c.done:
		return nil, fmt.Errorf("slack: connection closed before hello: %w", c.err)
	case <-t.C:
		err := fmt.Errorf("slack: %w: no hello within %v", adapter.ErrTemporary, a.conf.RequestTimeout)
		c.fail(err)
		return nil, err
	case <-ctx.Done():
		return c, ctx.Err()
	}
}

// dial performs the websocket handshake and starts the reader and pinger.
func (a *Adapter) dial(ctx context.Context, wsURL string) (*conn, error) {
	u, err := url.Parse(wsURL)
	if err != nil || u.Host == "" || (u.Scheme != "wss" && !(u.Scheme == "ws" && isLoopback(u.Hostname()))) {
		return nil, fmt.Errorf("slack: apps.connections.open: %w: unusable websocket url", adapter.ErrTemporary)
	}
	var (
		mu       sync.Mutex
		raws     []net.Conn
		finished bool // Dial returned: a dial still running is too late
	)
	dialer := &net.Dialer{Timeout: a.conf.RequestTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nc, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			mu.Lock()
			defer mu.Unlock()
			if finished {
				// net/http may finish a dial after its request was
				// cancelled and park the connection; nobody would close it.
				_ = nc.Close()
				return nil, errors.New("slack: websocket dial finished")
			}
			raws = append(raws, nc)
			return nc, nil
		},
		TLSHandshakeTimeout: a.conf.RequestTimeout,
	}
	hctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	ws, resp, err := websocket.Dial(hctx, wsURL, &websocket.DialOptions{
		HTTPClient: &http.Client{Transport: tr},
		HTTPHeader: http.Header{"User-Agent": {userAgent}},
	})
	cancel()
	mu.Lock()
	defer mu.Unlock()
	finished = true
	tr.CloseIdleConnections()
	if err != nil {
		for _, nc := range raws {
			_ = nc.Close()
		}
		status := ""
		if resp != nil {
			status = fmt.Sprintf(" (HTTP %d)", resp.StatusCode)
		}
		// The URL carries a connection ticket: keep it out of errors.
		msg := err.Error()
		if u.RawQuery != "" {
			msg = strings.ReplaceAll(msg, u.RawQuery, "[redacted]")
		}
		return nil, &redactedError{
			msg: fmt.Sprintf("slack: websocket handshake with %s%s: %s", u.Host, status, msg),
			err: adapter.ErrTemporary,
		}
	}
	if len(raws) == 0 {
		// Cannot happen with http.Transport; without the TCP connection a
		// close handshake could not be bounded.
		_ = ws.CloseNow()
		return nil, errors.New("slack: websocket handshake: no TCP connection recorded")
	}
	for _, nc := range raws[:len(raws)-1] {
		_ = nc.Close() // left over from a redirect
	}
	ws.SetReadLimit(readLimit)
	cctx, ccancel := context.WithCancel(a.runCtx)
	c := &conn{
		id:     connSeq.Add(1),
		host:   u.Host,
		ws:     ws,
		raw:    raws[len(raws)-1],
		ctx:    cctx,
		cancel: ccancel,
		hello:  make(chan struct{}),
		disc:   make(chan string, 8),
		done:   make(chan struct{}),
	}
	c.log = a.Log.WithField("conn", c.id)
	a.open.Add(1) // until the reader returns
	a.Life.Go(func() { a.read(c) })
	a.Life.Go(func() { a.ping(c) })
	return c, nil
}

// redactedError replaces the message of an error that contained a secret.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// read is the connection's only reader. It answers Slack's pings (inside
// Read), signals hello and disconnect requests, and queues envelopes for
// the intake worker so that a slow store never stalls pings.
func (a *Adapter) read(c *conn) {
	defer close(c.done)
	defer a.open.Add(-1)
	defer func() { _ = c.ws.CloseNow() }()
	for {
		_, data, err := c.ws.Read(c.ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != -1 {
				err = fmt.Errorf("slack: connection closed by Slack with status %d", s)
			} else {
				err = fmt.Errorf("slack: read: %w", err)
			}
			c.fail(err)
			return
		}
		env, err := decodeEnvelope(data)
		if err != nil {
			a.Metrics.Rejected("malformed")
			c.log.WithError(err).Warn("slack: ignoring an unreadable frame")
			continue
		}
		switch env.Type {
		case typeHello:
			c.helloOnce.Do(func() {
				c.helloAt = time.Now()
				c.counted, c.held = env.NumConnections, int(a.open.Load())
				close(c.hello)
			})
			c.log.WithField("num_connections", env.NumConnections).Debug("slack: hello")
		case typeDisconnect:
			c.log.WithField("reason", env.Reason).Info("slack: disconnect requested")
			select {
			case c.disc <- env.Reason:
			default:
			}
		default:
			if env.EnvelopeID == "" {
				c.log.WithField("type", env.Type).Debug("slack: ignoring a frame without envelope_id")
				continue
			}
			select {
			case a.intake <- intakeItem{c: c, env: env}:
			case <-a.intakeCtx.Done():
				// Stopping: not acknowledged, Slack redelivers it.
			case <-c.ctx.Done():
				c.fail(c.ctx.Err())
				return
			}
		}
	}
}

// ping checks the link: coder/websocket answers Slack's pings inside Read
// but cannot notice that Slack went silent, so herald pings on a timer and
// drops a connection whose pong does not come back within request_timeout.
func (a *Adapter) ping(c *conn) {
	t := time.NewTicker(a.conf.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		if c.closing.Load() {
			return // the close handshake has its own bound
		}
		ctx, cancel := context.WithTimeout(c.ctx, a.conf.RequestTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err != nil {
			if c.ctx.Err() != nil || c.closing.Load() {
				return
			}
			c.log.WithError(err).Warn("slack: ping unanswered, dropping the connection")
			c.fail(fmt.Errorf("slack: ping unanswered: %w", err))
			return
		}
	}
}

// closeConn sends a close frame (1000) and waits for Slack's answer at most
// closeWait and never past ctx, then drops the connection.
func (a *Adapter) closeConn(ctx context.Context, c *conn) {
	c.closing.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.ws.Close(websocket.StatusNormalClosure, "")
	}()
	t := time.NewTimer(a.closeWait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		c.log.Debug("slack: no answer to the close frame, dropping the connection")
	case <-ctx.Done():
	}
	c.fail(errors.New("slack: connection closed by herald"))
	<-done // prompt: the TCP connection is closed
}
