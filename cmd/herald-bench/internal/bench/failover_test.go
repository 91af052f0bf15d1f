// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/testsupport/testwait"
)

// TestGoalFailover: every failover must end within lease_ttl + 2 s: the
// slowest one is judged, not the median; no sample is no data.
func TestGoalFailover(t *testing.T) {
	const ttl = 10 * time.Second
	tests := []struct {
		name string
		s    Summary
		want Verdict
	}{
		{"within", Summary{N: 5, Median: 9, Max: 10.3}, Pass},
		{"at the bound", Summary{N: 5, Median: 9, Max: 12}, Pass},
		{"one slow", Summary{N: 5, Median: 9, Max: 12.1}, Miss},
		{"no sample", Summary{}, Invalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := goalFailover(ttl, tt.s)
			if g.Verdict != tt.want {
				t.Errorf("verdict %s, want %s (%+v)", g.Verdict, tt.want, g)
			}
			if g.Target != "every failover ≤ lease_ttl + 2s (12000 ms)" {
				t.Errorf("target %q", g.Target)
			}
		})
	}
}

func TestFailoverRow(t *testing.T) {
	row := failoverRow(5*time.Second, Summarize([]float64{4.5, 5.2, 4.9}))
	want := []string{"5s", "3", "4900 ms", "4500–5200 ms", "+200 ms", "7000 ms"}
	for i := range want {
		if row[i] != want[i] {
			t.Errorf("row = %q, want %q", row, want)
			break
		}
	}
	if got := failoverRow(5*time.Second, Summary{}); got[1] != "0" || got[2] != "–" || got[5] != "7000 ms" {
		t.Errorf("empty row = %q", got)
	}
}

// TestClusterConfIsValid: a node's configuration parses with herald's own
// parser as a cluster node on the JetStream store with the bot.
func TestClusterConfIsValid(t *testing.T) {
	text := clusterConf{Node: "node1", LeaseTTL: 10 * time.Second}.render()
	cfg, err := config.Parse("node.yaml", []byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	if !cfg.Cluster.Enabled || cfg.Cluster.NodeID != "node1" || cfg.Cluster.LeaseTTL != 10*time.Second {
		t.Errorf("cluster = %+v", cfg.Cluster)
	}
	if cfg.Store.Backend != "nats" || cfg.Store.NATS.Prefix != clusterPrefix || cfg.Store.NATS.Replicas != 3 {
		t.Errorf("store = %+v", cfg.Store)
	}
	if _, ok := cfg.Platforms[failoverPlatform]; !ok || len(cfg.Platforms) != 1 {
		t.Errorf("platforms = %v, want only %s", cfg.Platforms, failoverPlatform)
	}
}

// TestTGFake: the fake answers getMe, holds getUpdates for its timeout,
// refuses another token, and counts the nodes polling at once.
func TestTGFake(t *testing.T) {
	f := newTGFake()
	defer f.Close()
	urls := make([]string, 2)
	for node := range urls {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		f.serve(node, ln)
		urls[node] = "http://" + ln.Addr().String()
	}
	call := func(ctx context.Context, node int, token, method, body string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, urls[node]+"/bot"+token+"/"+method, strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	ctx := context.Background()
	if code, body, err := call(ctx, 0, tgToken, "getMe", "{}"); err != nil || code != 200 || !strings.Contains(body, `"is_bot":true`) {
		t.Errorf("getMe: %d %s %v", code, body, err)
	}
	if code, _, err := call(ctx, 0, "1:other", "getMe", "{}"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("another token: %d %v", code, err)
	}
	if code, body, err := call(ctx, 1, tgToken, "getUpdates", `{"timeout":0}`); err != nil || code != 200 || body != `{"ok":true,"result":[]}` {
		t.Errorf("getUpdates, timeout 0: %d %s %v", code, body, err)
	}
	if p := <-f.polls; p.node != 1 {
		t.Errorf("poll recorded for node %d, want 1", p.node)
	}
	// Two nodes holding a long poll at once: both count, and the overlap
	// is remembered after they end.
	hctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for node := range urls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _ = call(hctx, node, tgToken, "getUpdates", `{"timeout":30}`)
		}()
	}
	testwait.Within(t, 30*time.Second, "both nodes polling", func() bool { return len(f.pollers()) == 2 })
	cancel()
	wg.Wait()
	testwait.Within(t, 30*time.Second, "no node polling after the clients left", func() bool { return len(f.pollers()) == 0 })
	if got := f.maxPollers(); got != 2 {
		t.Errorf("maxPollers = %d, want 2", got)
	}
}

// TestNextPoller: only a poll of another node after the kill ends the
// wait; the killed node's polls and earlier ones do not.
func TestNextPoller(t *testing.T) {
	t0 := time.Now()
	polls := make(chan tgPoll, 4)
	polls <- tgPoll{node: 0, at: t0.Add(time.Second)}       // the killed node
	polls <- tgPoll{node: 1, at: t0.Add(-time.Millisecond)} // before the kill
	polls <- tgPoll{node: 2, at: t0.Add(9 * time.Second)}   // the failover
	polls <- tgPoll{node: 1, at: t0.Add(10 * time.Second)}  // later
	d, err := nextPoller(context.Background(), polls, 0, t0, time.Minute)
	if err != nil || d != 9*time.Second {
		t.Errorf("nextPoller = %v, %v; want 9s", d, err)
	}
	if _, err := nextPoller(context.Background(), make(chan tgPoll), 0, t0, 10*time.Millisecond); err == nil {
		t.Error("no poll: no error")
	}
}
