// SPDX-License-Identifier: Apache-2.0

package adapter

import (
	"net"
	"net/http"
	"time"
)

// NewTransport returns the HTTP transport of a platform client whose calls
// each carry their own context deadline: dials and TLS handshakes bounded
// by requestTimeout, the proxy from the environment (loopback is never
// proxied), at most 8 idle connections, idle ones closed after 30 s (below
// common server keep-alive timeouts, so a send rarely races the server
// closing its connection and looks ambiguous).
//
// It speaks HTTP/1.1 only (a custom DialContext without ForceAttemptHTTP2):
// a long poll and each send get their own connection, and a call cut by its
// deadline closes its own connection only. Over HTTP/2 all calls would
// share one connection, and one that died silently would swallow new calls
// until they time out. Build the http.Client without a Timeout.
func NewTransport(requestTimeout time.Duration) *http.Transport {
	dialer := &net.Dialer{Timeout: requestTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   requestTimeout,
		MaxIdleConns:          8,
		MaxIdleConnsPerHost:   8,
		IdleConnTimeout:       30 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}
