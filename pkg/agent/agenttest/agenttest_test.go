// SPDX-License-Identifier: Apache-2.0

package agenttest_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/agent/agenttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func post(t *testing.T, ctx context.Context, url, body string, header map[string]string) (*http.Response, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return (&http.Client{Transport: tr}).Do(req)
}

func TestDefaultBehaviour(t *testing.T) {
	srv := agenttest.New(t)
	for _, kind := range []string{"openai", "hermes"} {
		a, err := agent.New(srv.AgentConfig(t, kind), nil)
		if err != nil {
			t.Fatal(err)
		}
		var deltas []string
		req := agent.Request{SessionID: "s1", Messages: []agent.Message{{Role: agent.RoleUser, Content: "hello  there"}}}
		got, err := a.Complete(context.Background(), req, agent.Events{Delta: func(s string) { deltas = append(deltas, s) }})
		if err != nil || got != "agent: hello  there" || len(deltas) != 3 {
			t.Errorf("%s: Complete = %q, %v (deltas %q)", kind, got, err, deltas)
		}
		a.(interface{ CloseIdleConnections() }).CloseIdleConnections()
	}
	// Non-streaming requests get a chat.completion.
	resp, err := post(t, context.Background(), srv.URL, `{"model":"m","messages":[{"role":"user","content":"x"}]}`,
		map[string]string{"Authorization": "Bearer agenttest-key"})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), `"content":"agent: x"`) {
		t.Errorf("non-streaming reply %s: %s", resp.Header.Get("Content-Type"), b)
	}
}

func TestKeyAndPath(t *testing.T) {
	srv := agenttest.New(t)
	srv.SetKey("k1")
	tests := []struct {
		name   string
		path   string
		auth   string
		status int
	}{
		{"right key", "/v1/chat/completions", "Bearer k1", 200},
		{"wrong key", "/v1/chat/completions", "Bearer k2", 401},
		{"no key", "/v1/chat/completions", "", 401},
		{"other path", "/v1/responses", "Bearer k1", 404},
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	for _, tt := range tests {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+tt.path, strings.NewReader(`{"messages":[]}`))
		if tt.auth != "" {
			req.Header.Set("Authorization", tt.auth)
		}
		resp, err := tr.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, resp.StatusCode, tt.status)
		}
	}
	if n := len(srv.Requests()); n != 3 {
		t.Errorf("%d requests recorded, want 3 (unknown paths are not)", n)
	}
}

func TestScriptsInOrderThenHandler(t *testing.T) {
	srv := agenttest.New(t)
	srv.Enqueue(agenttest.Error(500, "first"), agenttest.JSON("second"))
	srv.SetHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(b)
	})
	want := []string{`"message":"first"`, `"content":"second"`, `{"n":3}`}
	for i, w := range want {
		resp, err := post(t, context.Background(), srv.URL, `{"n":`+string(rune('1'+i))+`}`, nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), w) {
			t.Errorf("request %d: %s, want %s", i+1, b, w)
		}
	}
}

func TestStreamSteps(t *testing.T) {
	srv := agenttest.New(t)
	srv.Enqueue(agenttest.Stream(agenttest.Role(), agenttest.ToolProgress("web", "searching"), agenttest.Keepalive(),
		agenttest.Content("hi"), agenttest.Finish("stop"), agenttest.Usage(), agenttest.Done()))
	resp, err := post(t, context.Background(), srv.URL, `{"stream":true}`, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	for _, want := range []string{`"delta":{"content":"","role":"assistant"}`, "event: hermes.tool.progress\ndata: {", ": keepalive\n\n",
		`"delta":{"content":"hi"}`, `"finish_reason":"stop"`, `"choices":[]`, "data: [DONE]\n\n"} {
		if !strings.Contains(s, want) {
			t.Errorf("stream lacks %q:\n%s", want, s)
		}
	}
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("Content-Type %q", resp.Header.Get("Content-Type"))
	}
}

// TestHangEndsWithClient checks that hanging scripts end when the client
// goes away and that Close never waits for them.
func TestHangEndsWithClient(t *testing.T) {
	for _, sc := range []agenttest.Script{agenttest.Hang(), agenttest.Stream(agenttest.Role(), agenttest.Stall())} {
		srv := agenttest.New(t)
		srv.Enqueue(sc)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			resp, err := post(t, ctx, srv.URL, `{}`, nil)
			if err == nil {
				_, err = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			errc <- err
		}()
		wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := srv.WaitActive(wctx, 1); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("client error %v", err)
		}
		if err := srv.WaitActive(wctx, 0); err != nil {
			t.Errorf("handler still running after the client left: %v", err)
		}
		wcancel()
		srv.Close()
	}

	// A hanging request whose client never cancels: Close ends it.
	srv := agenttest.New(t)
	srv.Enqueue(agenttest.Hang())
	errc := make(chan error, 1)
	go func() {
		_, err := post(t, context.Background(), srv.URL, `{}`, nil)
		errc <- err
	}()
	wctx, wcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer wcancel()
	if err := srv.WaitActive(wctx, 1); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() { srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung on a hanging request")
	}
	if err := <-errc; err == nil {
		t.Error("client got a response from a closed server")
	}
}

func TestHoldAndConcurrency(t *testing.T) {
	srv := agenttest.New(t)
	release := srv.Hold()
	const n = 4
	done := make(chan string, n)
	for range n {
		go func() {
			resp, err := post(t, context.Background(), srv.URL, `{"stream":true,"messages":[{"role":"user","content":"q"}]}`, nil)
			if err != nil {
				done <- err.Error()
				return
			}
			sc := bufio.NewScanner(resp.Body)
			var last string
			for sc.Scan() {
				if sc.Text() != "" {
					last = sc.Text()
				}
			}
			resp.Body.Close()
			done <- last
		}()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.WaitActive(ctx, n); err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitRequests(ctx, n); err != nil {
		t.Fatal(err)
	}
	release()
	for range n {
		if last := <-done; last != "data: [DONE]" {
			t.Errorf("stream ended with %q", last)
		}
	}
	if err := srv.WaitActive(ctx, 0); err != nil {
		t.Fatal(err)
	}
	if srv.MaxActive() != n {
		t.Errorf("MaxActive %d, want %d", srv.MaxActive(), n)
	}
}
