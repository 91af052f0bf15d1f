// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Scenario 6: a client sending requests continuously through 20 restarts
// sees no refused or reset connection, and every request is answered.
func TestSocketContinuityThroughRestarts(t *testing.T) {
	e := newEnv(t, envOpts{})
	e.startReady()
	l := e.throughRestarts(20, func() (string, error) {
		if _, code, out := e.timed("restart", "herald.service"); code != 0 {
			return out, fmt.Errorf("exit %d", code)
		}
		return "", nil
	})
	t.Logf("system manager: %s", l)
	l.check(t)
	if st := e.show("herald.service", "NRestarts", "ActiveState"); st["ActiveState"] != "active" {
		t.Fatalf("after the restarts: %v", st)
	}
}

// load is what throughRestarts measured.
type load struct {
	sent, ok int64
	failures []string
	restarts []time.Duration // how long each restart took
}

func (l load) String() string {
	took := slices.Clone(l.restarts)
	slices.Sort(took)
	s := fmt.Sprintf("%d requests through %d restarts, %d answered 202, %d failed", l.sent, len(took), l.ok, len(l.failures))
	if len(took) > 0 {
		s += fmt.Sprintf("; restart median %v, slowest %v", took[len(took)/2].Round(time.Millisecond), took[len(took)-1].Round(time.Millisecond))
	}
	return s
}

// check fails the test unless every request was answered 202 and the
// clients really sent.
func (l load) check(t *testing.T) {
	t.Helper()
	if len(l.failures) > 0 {
		t.Fatalf("%d of %d requests failed, e.g. %v", len(l.failures), l.sent, l.failures[:min(5, len(l.failures))])
	}
	if l.ok < 100 {
		t.Fatalf("only %d requests answered: the clients were not really sending", l.ok)
	}
}

// throughRestarts keeps four clients posting webhook messages to
// 127.0.0.1:8089 while restart runs n times, 100ms apart, and reports
// every request that was not answered 202. A failing restart fails the
// test.
func (e *env) throughRestarts(n int, restart func() (string, error)) load {
	t := e.t
	t.Helper()
	var (
		sent, ok atomic.Int64
		failMu   sync.Mutex
		failures []string
		stop     = make(chan struct{})
		wg       sync.WaitGroup
	)
	// Half the clients open a connection per request (the accept path),
	// half keep connections alive (the keep-alive path across a stop).
	for c := 0; c < 4; c++ {
		client := e.s.HTTPClient()
		client.Timeout = 30 * time.Second
		if c%2 == 0 {
			client.Transport.(*http.Transport).DisableKeepAlives = true
		}
		wg.Add(1)
		go func(c int, client *http.Client) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("c%d-%d", c, i)
				body := fmt.Sprintf(`{"conversation_id":"conv-%d","user_id":"u","text":"m %s"}`, i%16, id)
				req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:8089/hooks/webhook", strings.NewReader(body))
				req.Header.Set("webhook-id", id)
				sent.Add(1)
				resp, err := client.Do(req)
				if err != nil {
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", id, err))
					failMu.Unlock()
					continue
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					failMu.Lock()
					failures = append(failures, fmt.Sprintf("%s: HTTP %d", id, resp.StatusCode))
					failMu.Unlock()
					continue
				}
				ok.Add(1)
			}
		}(c, client)
	}
	var took []time.Duration
	for i := 0; i < n; i++ {
		time.Sleep(100 * time.Millisecond)
		begin := time.Now()
		out, err := restart()
		took = append(took, time.Since(begin))
		if err != nil {
			close(stop)
			wg.Wait()
			t.Fatalf("restart %d: %v: %s", i+1, err, out)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	return load{sent: sent.Load(), ok: ok.Load(), failures: failures, restarts: took}
}
