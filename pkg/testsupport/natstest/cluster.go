// SPDX-License-Identifier: Apache-2.0

package natstest

import (
	"fmt"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// StartCluster starts n JetStream servers clustered over routes on
// 127.0.0.1 and waits until the JetStream meta group has a leader.
func StartCluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	// Route ports are chosen first so every server lists every other; a
	// port freed here could be taken again before the server binds it,
	// which on loopback in a test is rare and fails loudly.
	var routes []*url.URL
	ports := make([]int, n)
	for i := range ports {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick route port: %v", err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	var servers []*server.Server
	for i := 0; i < n; i++ {
		opts := baseOptions(t)
		opts.ServerName = fmt.Sprintf("n%d", i)
		opts.Cluster = server.ClusterOpts{Name: "herald-test", Host: "127.0.0.1", Port: ports[i]}
		opts.Routes = routes
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatalf("natstest: new server %d: %v", i, err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		servers = append(servers, s)
	}
	for i, s := range servers {
		if !s.ReadyForConnections(60 * time.Second) {
			t.Fatalf("natstest: server %d not ready within 60s", i)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ready := 0
		for _, s := range servers {
			if s.JetStreamIsClustered() && s.JetStreamIsCurrent() {
				ready++
			}
		}
		if ready == n {
			return servers
		}
		if time.Now().After(deadline) {
			t.Fatalf("natstest: JetStream cluster of %d not ready within 60s", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
