// SPDX-License-Identifier: Apache-2.0

package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// Synchronous replies: a sender may ask to wait for the reply in the
// response to its POST (?wait=10s, or Prefer: wait=10 per RFC 7240), which
// is what makes the webhook usable from a shell or a script without a reply
// endpoint of its own. The message is stored and acknowledged exactly as
// without waiting; the reply still comes from herald's durable outbox, and
// its parts are written into the waiting request's response instead of being
// POSTed to a reply URL.
//
// A part counts as delivered only once it has been written and flushed to
// the client: Send hands it to the request's handler and returns nil only
// when the handler reports the write done. The response is streamed, so
// part 1 is written (and its Send returns) while part 2 is still being
// produced. When the wait ends, the parts written so far close the answer
// ("complete": false) and later parts take the usual path to the reply URL;
// a part whose write fails takes it too.
//
// Only the request that stored the message may wait for its reply. Waiters
// are keyed by a random token put into the stored message's Meta, and every
// reply carries its message's Meta, so a later request with the same
// delivery id (a duplicate, not stored: a redelivery, or someone replaying
// the id, which neither ?wait nor, outside Standard Webhooks, the delivery id
// headers are signed against) never receives another request's reply.

// maxWait bounds how long a request may wait for its reply.
const maxWait = 60 * time.Second

// metaWait is the Meta key of the token of the request waiting for the
// reply. It is set only by the adapter, never from the request, and means
// nothing outside the process that set it.
const metaWait = "herald_wait"

// waitPart is one reply part handed to a waiting request.
type waitPart struct {
	text     string
	part, of int
	written  chan error // buffered: the outcome of writing it to the client
}

// waiter is the request waiting for the reply to one stored message.
type waiter struct {
	id    string         // the event id answered
	parts chan *waitPart // unbuffered: a part changes hands only while the request takes parts
	done  chan struct{}  // closed once the request takes no more parts
}

// waiters maps a token to the request waiting under it.
type waiters struct {
	mu sync.Mutex
	m  map[string]*waiter
}

// add registers a request waiting for the reply to the event id and returns
// the token to store with the message.
func (ws *waiters) add(id string) (string, *waiter, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, fmt.Errorf("crypto/rand: %w", err)
	}
	token := hex.EncodeToString(b[:])
	w := &waiter{id: id, parts: make(chan *waitPart), done: make(chan struct{})}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if ws.m == nil {
		ws.m = map[string]*waiter{}
	}
	ws.m[token] = w
	return token, w, nil
}

// remove ends the wait registered under token: parts offered from now on
// take the usual path.
func (ws *waiters) remove(token string) {
	ws.mu.Lock()
	w := ws.m[token]
	delete(ws.m, token)
	ws.mu.Unlock()
	if w != nil {
		close(w.done)
	}
}

// offer hands a reply part to the request waiting for it, if one is, and
// waits until the part is written to that client. delivered is false when
// nobody waits (any more) or the write failed: the caller then delivers the
// usual way. An error means the outcome is not known (ctx ended).
func (ws *waiters) offer(ctx context.Context, msg *message.Outbound) (delivered bool, err error) {
	token := msg.Meta[metaWait]
	if token == "" {
		return false, nil
	}
	ws.mu.Lock()
	w := ws.m[token]
	ws.mu.Unlock()
	if w == nil || w.id != msg.ReplyTo {
		return false, nil
	}
	p := &waitPart{text: msg.Text, part: msg.Part, of: max(msg.Parts, 1), written: make(chan error, 1)}
	select {
	case w.parts <- p:
	case <-w.done:
		return false, nil
	case <-ctx.Done():
		return false, fmt.Errorf("webhook: send: %w: the waiting request did not take the reply: %w", adapter.ErrTemporary, ctx.Err())
	}
	select {
	case err := <-p.written:
		return err == nil, nil
	case <-ctx.Done():
		return false, fmt.Errorf("webhook: send: %w: writing the reply to the waiting request: %w", adapter.ErrAmbiguous, ctx.Err())
	}
}

// await streams the reply parts handed to wt into the response until the
// last part is written, the wait ends or the client goes away. Nothing is
// written before the first part: a wait that ends without one is answered
// 202 as without waiting.
//
// Body: {"id":"<event id>","replies":["part 1","part 2"],"complete":true}.
func (a *Adapter) await(w http.ResponseWriter, r *http.Request, id string, wait time.Duration, token string, wt *waiter) {
	rc := http.NewResponseController(w)
	// The body is read: the read deadline no longer applies, the wait
	// does; the server's write deadline is moved past it.
	if err := rc.SetWriteDeadline(a.now().Add(wait + 5*time.Second)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		a.Log.WithError(err).Debug("webhook: cannot extend the write deadline")
	}
	timeout, stop := a.waitTimer(wait)
	defer stop()
	written := map[int]bool{}
	var broken, ended bool
	write := func(b []byte) error {
		if _, err := w.Write(b); err != nil {
			return err
		}
		if err := rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
		return nil
	}
loop:
	for {
		select {
		case p := <-wt.parts:
			if written[p.part] {
				// A retry of a part already written.
				p.written <- nil
				continue
			}
			text, _ := json.Marshal(p.text)
			var b []byte
			if len(written) == 0 {
				idJSON, _ := json.Marshal(id)
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("X-Content-Type-Options", "nosniff")
				w.WriteHeader(http.StatusOK)
				b = append(append(append([]byte(`{"id":`), idJSON...), `,"replies":[`...), text...)
			} else {
				b = append([]byte(","), text...)
			}
			// The last part goes out with the end of the answer, so the
			// answer is whole once the reply counts as delivered.
			last := len(written)+1 >= p.of
			if last {
				b = append(b, "],\"complete\":true}\n"...)
			}
			err := write(b)
			p.written <- err
			if err != nil {
				broken = true
				a.Log.WithError(err).WithField("event_id", id).Info("webhook: cannot write the reply to the waiting request; it takes the reply URL")
				break loop
			}
			written[p.part] = true
			if last {
				ended = true
				break loop
			}
		case <-timeout:
			break loop
		case <-r.Context().Done():
			broken = true
			break loop
		}
	}
	// From here on, parts take the usual path.
	a.waiters.remove(token)
	switch {
	case broken, ended:
	case len(written) == 0:
		writeJSON(w, http.StatusAccepted, acceptedBody{ID: id})
	default:
		_ = write([]byte(`],"complete":false}` + "\n"))
	}
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

// newWaitTimer is the production Adapter.waitTimer.
func newWaitTimer(d time.Duration) (<-chan time.Time, func() bool) {
	t := time.NewTimer(d)
	return t.C, t.Stop
}
