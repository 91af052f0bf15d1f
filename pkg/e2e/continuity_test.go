// SPDX-License-Identifier: Apache-2.0

package e2e

import (
	"fmt"
	"net/http"
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
	for i := 0; i < 20; i++ {
		time.Sleep(100 * time.Millisecond)
		if _, code, out := e.timed("restart", "herald.service"); code != 0 {
			close(stop)
			wg.Wait()
			t.Fatalf("restart %d: %s", i+1, out)
		}
	}
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d requests through 20 restarts, %d answered 202", sent.Load(), ok.Load())
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed, e.g. %v", len(failures), sent.Load(), failures[:min(5, len(failures))])
	}
	if ok.Load() < 100 {
		t.Fatalf("only %d requests answered: the clients were not really sending", ok.Load())
	}
	if st := e.show("herald.service", "NRestarts", "ActiveState"); st["ActiveState"] != "active" {
		t.Fatalf("after the restarts: %v", st)
	}
}
