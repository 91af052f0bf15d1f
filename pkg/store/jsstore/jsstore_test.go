// SPDX-License-Identifier: Apache-2.0

package jsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/heraldgw/herald/pkg/dispatch"
	"github.com/heraldgw/herald/pkg/dispatch/storetest"
	"github.com/heraldgw/herald/pkg/store/jsstore"
	"github.com/heraldgw/herald/pkg/testsupport/natstest"
)

var _ dispatch.Store = (*jsstore.Store)(nil)

var prefixes atomic.Int64

// connect opens a client connection to url, closed when the test ends.
func connect(t testing.TB, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Timeout(10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// opener gives each test a new prefix (its own bucket) on the servers;
// every open connects anew, as a restarted herald would.
func opener(urls []string, replicas int) func(t *testing.T) storetest.Opener {
	return func(t *testing.T) storetest.Opener {
		prefix := fmt.Sprintf("t%d", prefixes.Add(1))
		n := 0
		return func(t *testing.T, now func() time.Time) storetest.Backend {
			t.Helper()
			n++
			nc := connect(t, urls[n%len(urls)])
			s, err := jsstore.Open(context.Background(), nc, jsstore.Options{Prefix: prefix, Replicas: replicas, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		}
	}
}

func urls(servers ...*server.Server) []string {
	var out []string
	for _, s := range servers {
		out = append(out, s.ClientURL())
	}
	return out
}

// TestR1 runs the store contract against one JetStream server.
func TestR1(t *testing.T) {
	srv := natstest.StartServer(t)
	storetest.Run(t, opener(urls(srv), 1))
}

// TestR3 runs the store contract against a 3-node JetStream cluster with
// three replicas; each reopen connects to another node.
func TestR3(t *testing.T) {
	if testing.Short() {
		t.Skip("a 3-node cluster")
	}
	servers := natstest.StartCluster(t, 3)
	storetest.Run(t, opener(urls(servers...), 3))
}
