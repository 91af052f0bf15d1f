// SPDX-License-Identifier: Apache-2.0

package herald

import (
	"context"
	"os"
	"sync"

	"github.com/heraldgw/herald/pkg/adapter"
)

// natsRunner is the background start of a JetStream store that NATS did
// not let herald open at start: retry until NATS answers, then start the
// dispatcher. It ends when the daemon stops.
type natsRunner struct {
	mu     sync.Mutex // held while the dispatcher starts; halt waits for it
	halted bool
	// dispatching: the dispatcher started (the first step of startWork).
	dispatching bool
	cancel      context.CancelFunc
	done        chan struct{}
}

// startNATS starts the dispatcher (and in cluster mode the coordinator)
// now if the store is open and its work can be read, else in the
// background once NATS answers. Until then the dispatcher refuses intake
// with adapter.ErrUnavailable and STATUS= says why.
func (d *daemon) startNATS(ctx context.Context) {
	if _, err := d.nats.open(); err == nil {
		err := d.startWork(ctx)
		if err == nil {
			return
		}
		d.log.WithError(err).Warn("cannot start work on the message store; retrying")
	}
	rctx, cancel := context.WithCancel(context.Background())
	d.natsRun.cancel, d.natsRun.done = cancel, make(chan struct{})
	cfgFile := d.cfg.File
	go func() {
		defer close(d.natsRun.done)
		d.runNATS(rctx, cfgFile)
	}()
}

func (d *daemon) runNATS(ctx context.Context, cfgFile string) {
	if _, err := d.nats.open(); err != nil {
		if !d.nats.retry(ctx) {
			return
		}
		d.importPairings(ctx, cfgFile, d.log)
	}
	b := natsRetry
	for {
		if d.startDispatchUnlessHalted(ctx) {
			d.board.poke()
			return
		}
		if !adapter.Sleep(ctx, b.Next()) {
			return
		}
	}
}

// startDispatchUnlessHalted starts the dispatcher unless the daemon began
// to stop; it reports whether the loop is over.
func (d *daemon) startDispatchUnlessHalted(ctx context.Context) bool {
	r := &d.natsRun
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.halted {
		return true
	}
	if err := d.startWork(ctx); err != nil {
		d.log.WithError(err).Warn("cannot start work on the message store; retrying")
		return false
	}
	d.log.Info("message store open: herald takes messages")
	return true
}

// startWork starts what needs the open store: the dispatcher, which
// recovers the work left pending (in cluster mode it only opens intake),
// then in cluster mode the coordinator, which starts the partitions and
// platforms this node should hold. A step that succeeded is not repeated
// when a later one failed and startWork is called again. It runs before
// the main loop, or under natsRunner.mu.
func (d *daemon) startWork(ctx context.Context) error {
	if !d.natsRun.dispatching {
		if err := d.startDispatch(ctx); err != nil {
			return err
		}
		d.natsRun.dispatching = true
	}
	if d.clusterNode != nil {
		return d.clusterNode.start(ctx)
	}
	return nil
}

// haltNATS ends the background start: after it returns the dispatcher is
// either started or will not be, so the stop that follows cannot race with
// a start. It waits for the goroutine only when wait is set (at close):
// a connection attempt in progress takes at most natsDialTimeout.
func (d *daemon) haltNATS(wait bool) {
	r := &d.natsRun
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.mu.Lock()
	r.halted = true
	r.mu.Unlock()
	if wait {
		<-r.done
	}
}

// onNATSState follows the store's state into the metrics and STATUS=.
func (d *daemon) onNATSState(writable bool) {
	d.metrics.StoreWritable(writable)
	d.board.poke()
}

// natsClientName names herald's connection in the NATS server's
// monitoring: "herald@<host>".
func natsClientName() string {
	h, err := os.Hostname()
	if err != nil {
		return "herald"
	}
	return "herald@" + h
}
