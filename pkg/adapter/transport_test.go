// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"testing"
	"time"
)

func TestNewTransportBounded(t *testing.T) {
	tr := NewTransport(7 * time.Second)
	if tr.TLSHandshakeTimeout != 7*time.Second || tr.DialContext == nil {
		t.Fatalf("handshake %v, dial %v: not bounded by the request timeout", tr.TLSHandshakeTimeout, tr.DialContext != nil)
	}
	if tr.ForceAttemptHTTP2 {
		t.Fatal("HTTP/2 attempted: calls would share one connection")
	}
	if tr.IdleConnTimeout <= 0 || tr.MaxIdleConnsPerHost <= 0 {
		t.Fatalf("idle %v, per host %d", tr.IdleConnTimeout, tr.MaxIdleConnsPerHost)
	}
}
