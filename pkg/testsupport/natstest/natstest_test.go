// SPDX-License-Identifier: Apache-2.0

package natstest

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestProxyPassesClose: when the server side closes a connection (a NATS
// server that stops), the client side of the proxy is closed too, as a
// direct connection would be.
func TestProxyPassesClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	p := StartProxy(t, ln.Addr().String())
	dial := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", p.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		select {
		case s := <-accepted:
			return c, s
		case <-time.After(10 * time.Second):
			t.Fatal("proxy did not connect to the server")
		}
		return nil, nil
	}

	c, s := dial()
	defer c.Close()
	s.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read after the server closed: %v, want EOF", err)
	}
}
