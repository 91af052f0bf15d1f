// SPDX-License-Identifier: Apache-2.0

package natstest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"time"

	"github.com/heraldgw/herald/pkg/testsupport/testwait"
	"github.com/nats-io/nats-server/v2/server"
)

// Config describes the servers Run starts.
type Config struct {
	// Dir holds the JetStream data: server i stores under Dir/n<i>.
	Dir string
	// N is the number of servers: 1 is a single server, more form one
	// cluster over routes on 127.0.0.1.
	N int
	// SyncAlways makes JetStream flush every write to the device before
	// acknowledging it (the server setting sync_interval: always). By
	// default JetStream flushes every 2 minutes and relies on replication
	// for durability.
	SyncAlways bool
	// Ready bounds the wait for the servers and, with N > 1, for
	// JetStream to be clustered and current on each; default 60 s.
	Ready time.Duration
}

// Run starts cfg.N JetStream servers on random 127.0.0.1 ports and returns
// once they accept clients and JetStream is current on each. On an error it
// shuts down what it started. Shutdown stops them.
func Run(cfg Config) ([]*server.Server, error) {
	if cfg.N < 1 {
		return nil, fmt.Errorf("natstest: %d servers", cfg.N)
	}
	if cfg.Ready <= 0 {
		cfg.Ready = 60 * time.Second
	}
	// Route ports are chosen first so every server lists every other; a
	// port freed here could be taken again before the server binds it,
	// which on loopback is rare and fails loudly.
	var routes []*url.URL
	ports := make([]int, cfg.N)
	for i := range ports {
		if cfg.N == 1 {
			break // a single server has no routes
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("natstest: pick route port: %w", err)
		}
		ports[i] = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[i])})
	}
	var servers []*server.Server
	fail := func(err error) ([]*server.Server, error) {
		Shutdown(servers)
		return nil, err
	}
	for i := range cfg.N {
		opts := &server.Options{
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   filepath.Join(cfg.Dir, fmt.Sprintf("n%d", i)),
			NoLog:      true,
			NoSigs:     true,
			SyncAlways: cfg.SyncAlways,
		}
		if cfg.N > 1 {
			opts.ServerName = fmt.Sprintf("n%d", i)
			opts.Cluster = server.ClusterOpts{Name: "herald-test", Host: "127.0.0.1", Port: ports[i]}
			opts.Routes = routes
		}
		s, err := server.NewServer(opts)
		if err != nil {
			return fail(fmt.Errorf("natstest: new server %d: %w", i, err))
		}
		go s.Start()
		servers = append(servers, s)
	}
	deadline := time.Now().Add(cfg.Ready)
	for i, s := range servers {
		if !s.ReadyForConnections(time.Until(deadline)) {
			return fail(fmt.Errorf("natstest: server %d not ready within %v", i, cfg.Ready))
		}
	}
	if cfg.N == 1 {
		return servers, nil
	}
	current := testwait.Until(time.Until(deadline), func() bool {
		for _, s := range servers {
			if !s.JetStreamIsClustered() || !s.JetStreamIsCurrent() {
				return false
			}
		}
		return true
	})
	if !current {
		return fail(errors.New("natstest: JetStream cluster not ready within " + cfg.Ready.String()))
	}
	return servers, nil
}

// Shutdown stops servers and waits until each has stopped.
func Shutdown(servers []*server.Server) {
	for _, s := range servers {
		s.Shutdown()
	}
	for _, s := range servers {
		s.WaitForShutdown()
	}
}
