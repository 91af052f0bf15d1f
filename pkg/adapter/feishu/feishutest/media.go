// SPDX-License-Identifier: Apache-2.0

package feishutest

import (
	"net/http"
	"strconv"
	"time"

	"github.com/heraldgw/herald/pkg/adapter/fakeserver"
)

// Resource is a file the fake serves through the message-resource API.
type Resource struct {
	Data        []byte
	ContentType string
	// Drip, when set, writes the body one byte per Drip (a slow body).
	Drip time.Duration
	// Announce, when larger than Data, is the Content-Length sent: the
	// fake writes Data and drops the connection (a file bigger than the
	// test wants to hold).
	Announce int64
}

type resourceKey struct{ messageID, key, typ string }

// AddResource makes GET /open-apis/im/v1/messages/{messageID}/resources/{key}?type=typ
// serve r.
func (s *Server) AddResource(messageID, key, typ string, r Resource) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.resources == nil {
		s.resources = map[resourceKey]Resource{}
	}
	s.resources[resourceKey{messageID, key, typ}] = r
}

// handleResource serves a resource as the platform does: the bytes with
// their Content-Type, or a JSON error with code 234001 (invalid request
// parameter) for a key that does not belong to the message.
func (s *Server) handleResource(w http.ResponseWriter, r *http.Request) {
	s.countRequest(r)
	if !s.authorized(w, r) {
		return
	}
	if _, handled := s.nextFailure(w); handled {
		return
	}
	s.mu.Lock()
	res, ok := s.resources[resourceKey{r.PathValue("id"), r.PathValue("key"), r.URL.Query().Get("type")}]
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusBadRequest, map[string]any{"code": 234001, "msg": "Invalid request param."})
		return
	}
	w.Header().Set("Content-Type", res.ContentType)
	n := int64(len(res.Data))
	if res.Announce > n {
		n = res.Announce
	}
	w.Header().Set("Content-Length", strconv.FormatInt(n, 10))
	w.WriteHeader(http.StatusOK)
	if res.Drip <= 0 {
		_, _ = w.Write(res.Data)
		return
	}
	fakeserver.Drip(w, r, res.Data, res.Drip, s.quit)
}
