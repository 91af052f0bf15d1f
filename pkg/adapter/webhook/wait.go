// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/message"
)

// Synchronous replies: a sender may ask to wait for the reply in the
// response to its POST (?wait=10s, or Prefer: wait=10 per RFC 7240), which
// is what makes the webhook usable from a shell or a script without a reply
// endpoint of its own. The message is stored and acknowledged exactly as
// without waiting; the reply still comes from herald's durable outbox, and
// is handed to the waiting request instead of being POSTed to a reply URL.
// If the wait ends first, the answer is a plain 202 and the reply goes to the
// reply URL as usual (or fails for want of one).

// maxWait bounds how long a request may wait for its reply.
const maxWait = 60 * time.Second

// waiter collects the parts of the reply to one inbound message.
type waiter struct {
	mu    sync.Mutex
	parts []string
	done  chan struct{}
	full  bool
}

// waiters maps an inbound event id to the request waiting for its reply.
type waiters struct {
	mu sync.Mutex
	m  map[string]*waiter
}

func (ws *waiters) add(id string) (*waiter, bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]*waiter{}
	}
	if _, busy := ws.m[id]; busy {
		return nil, false
	}
	w := &waiter{done: make(chan struct{})}
	ws.m[id] = w
	return w, true
}

func (ws *waiters) remove(id string, w *waiter) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m[id] == w {
		delete(ws.m, id)
	}
}

// offer hands a reply part to the request waiting for it, if one is. It
// returns false when nobody waits (any more): the caller then delivers the
// usual way.
func (ws *waiters) offer(msg *message.Outbound) bool {
	ws.mu.Lock()
	w := ws.m[msg.ReplyTo]
	ws.mu.Unlock()
	if w == nil {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.full {
		return false
	}
	parts := max(msg.Parts, 1)
	if len(w.parts) < parts {
		w.parts = append(w.parts, make([]string, parts-len(w.parts))...)
	}
	if msg.Part >= 1 && msg.Part <= parts {
		w.parts[msg.Part-1] = msg.Text
	}
	complete := msg.Part == parts
	if complete {
		w.full = true
		close(w.done)
	}
	return true
}

// requestedWait reads ?wait=<duration> or Prefer: wait=<seconds>.
func requestedWait(r *http.Request) (time.Duration, error) {
	if v := r.URL.Query().Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			if secs, ierr := strconv.Atoi(v); ierr == nil {
				// Capped before the multiplication, which would overflow.
				d, err = time.Duration(min(secs, int(maxWait/time.Second)))*time.Second, nil
			}
		}
		if err != nil || d < 0 {
			return 0, fmt.Errorf("wait=%q is not a duration such as 10s", v)
		}
		return min(d, maxWait), nil
	}
	for _, pref := range r.Header.Values("Prefer") {
		for _, p := range strings.Split(pref, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if !ok || !strings.EqualFold(strings.TrimSpace(k), "wait") {
				continue
			}
			secs, err := strconv.Atoi(strings.Trim(strings.TrimSpace(v), `"`))
			if err != nil || secs < 0 {
				return 0, errors.New("the Prefer header's wait= takes whole seconds")
			}
			return time.Duration(min(secs, int(maxWait/time.Second))) * time.Second, nil
		}
	}
	return 0, nil
}

// repliedBody is the 200 answer of a request that waited for its reply.
type repliedBody struct {
	ID      string   `json:"id"`
	Replies []string `json:"replies"`
}
