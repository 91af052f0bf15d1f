// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"net/http"
	"strconv"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// The fault points of the Feishu fake (see fakeserver for the faults).
const (
	// Handshake is the websocket upgrade. Blackhole: it hangs unanswered;
	// Reject(status) fails it with the Handshake-Status header (and HTTP
	// status) and, WithCode, Handshake-Autherrcode (e.g. "1000040350").
	Handshake fakeserver.Point = "handshake"
	// Messages is the message endpoints (create, reply, edit). Blackhole
	// processes the request (the message appears) and then never answers:
	// the client's timeout fires after its request was sent. Feishu's own
	// error bodies and rate-limit headers, malformed ones included, are
	// scripted with FailNext.
	Messages fakeserver.Point = "messages"
)

// handshakeFault serves f at the websocket upgrade.
func (s *Server) handshakeFault(w http.ResponseWriter, r *http.Request, f fakeserver.Fault) {
	switch f.Kind {
	case fakeserver.KindBlackhole:
		fakeserver.Hold(r, s.quit)
		return
	case fakeserver.KindDrop:
		fakeserver.DropConn(w)
		return
	}
	w.Header().Set("Handshake-Status", strconv.Itoa(f.Status))
	w.Header().Set("Handshake-Msg", "rejected by feishutest")
	if f.Code != "" {
		w.Header().Set("Handshake-Autherrcode", f.Code)
	}
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(f.RetryAfter.Seconds())))
	}
	w.WriteHeader(f.Status)
}
