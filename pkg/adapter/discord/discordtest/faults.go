// SPDX-License-Identifier: Apache-2.0

package discordtest

import (
	"net/http"
	"strconv"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// The fault points of the Discord fake (see fakeserver for the faults).
const (
	// Gateway is the websocket handshake at /gw. Blackhole: it hangs
	// without an answer.
	Gateway fakeserver.Point = "gateway"
	// REST is every REST request, before anything else: a Blackhole hangs
	// them all until the client gives up.
	REST fakeserver.Point = "rest"
	// Messages is the message create, edit and typing requests.
	// Reject(status) answers Discord's error body for status (403 Missing
	// Permissions, 404 Unknown Channel, …); RateLimit answers 429 with
	// retry_after and the rate-limit headers (WithCode(Global): the global
	// limit); Blackhole stores a created message and then never answers,
	// as when the response is lost after Discord acted.
	Messages fakeserver.Point = "messages"
)

// Global is the code of a RateLimit at Messages that hits the global limit.
const Global = "global"

// serveFault answers f as Discord would; bucket names the rate-limit
// bucket in the headers. It returns the status written (0 for none).
func (s *Server) serveFault(w http.ResponseWriter, r *http.Request, f fakeserver.Fault, bucket string) int {
	switch f.Kind {
	case fakeserver.KindBlackhole:
		fakeserver.Hold(r, s.ctx.Done())
		return 0
	case fakeserver.KindDrop:
		fakeserver.DropConn(w)
		return 0
	case fakeserver.KindRateLimit:
		secs := f.RetryAfter.Seconds()
		global := f.Code == Global
		h := w.Header()
		h.Set("Retry-After", strconv.Itoa(int(secs+0.999)))
		h.Set("X-RateLimit-Limit", "5")
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset-After", strconv.FormatFloat(secs, 'f', 3, 64))
		h.Set("X-RateLimit-Bucket", bucket)
		if global {
			h.Set("X-RateLimit-Global", "true")
			h.Set("X-RateLimit-Scope", "global")
		} else {
			h.Set("X-RateLimit-Scope", "user")
		}
		return writeJSON(w, http.StatusTooManyRequests, map[string]any{
			"message": "You are being rate limited.", "retry_after": secs, "global": global, "code": 0,
		})
	}
	body := errorBodies[f.Status]
	if body == nil {
		body = map[string]any{"message": http.StatusText(f.Status), "code": 0}
	}
	return writeJSON(w, f.Status, body)
}
