// SPDX-License-Identifier: Apache-2.0

package natstest

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartServer starts a single JetStream server and stops it when the test ends.
func StartServer(t testing.TB) *server.Server {
	t.Helper()
	servers, err := Run(Config{Dir: t.TempDir(), N: 1, Ready: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { Shutdown(servers) })
	return servers[0]
}

// Proxy forwards TCP connections from a loopback port to a target address.
// Cut blackholes every current and future connection: bytes are read and
// dropped, nothing is forwarded and nothing is closed, as a network
// partition looks to both ends.
type Proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	cut    bool
	closed bool // set by Close: a connection accepted meanwhile is closed at once
	conns  []net.Conn
	wg     sync.WaitGroup
}

// StartProxy listens on 127.0.0.1 and forwards to target until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("natstest: proxy listen: %v", err)
	}
	return ServeProxy(t, ln, target)
}

// ServeProxy forwards the connections accepted on ln to target until the
// test ends, when it closes ln. ln may be a listener the test opened
// elsewhere, in a sandbox's network namespace say, so that a client
// there reaches a server of the test process.
func ServeProxy(t testing.TB, ln net.Listener, target string) *Proxy {
	p := Forward(ln, target)
	t.Cleanup(p.Close)
	return p
}

// Forward is ServeProxy outside a test: the caller stops the proxy with
// Close.
func Forward(ln net.Listener, target string) *Proxy {
	p := &Proxy{ln: ln, target: target}
	p.wg.Add(1)
	go p.accept()
	return p
}

// URL is the nats:// address of the proxy.
func (p *Proxy) URL() string { return "nats://" + p.ln.Addr().String() }

// Cut blackholes the proxy.
func (p *Proxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
}

// Restore ends a Cut: the connections made before or during it are
// closed (their clients see the loss and reconnect), new ones are
// forwarded.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *Proxy) isCut() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.closed {
			// Accepted before Close and dialled after it went through
			// the connections: nobody else would close these.
			p.mu.Unlock()
			c.Close()
			u.Close()
			return
		}
		p.conns = append(p.conns, c, u)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(c, u)
		go p.pipe(u, c)
	}
}

// pipe copies src to dst while the proxy is not cut, and discards after.
// When src ends (a server that stops closes its connections) it closes
// dst too, as a direct connection would end, unless the proxy is cut: a
// partition delivers nothing, a close neither.
func (p *Proxy) pipe(src, dst net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.isCut() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				src.Close()
				return
			}
		}
		if err != nil {
			if !p.isCut() {
				dst.Close()
			}
			return
		}
	}
}

// Close closes the listener and every connection and waits for the
// forwarding goroutines to end.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	p.closed = true
	for _, c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}
