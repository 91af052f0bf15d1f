// SPDX-License-Identifier: Apache-2.0

package adapter_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
)

type phaseLog struct {
	mu     sync.Mutex
	phases []adapter.Phase
	seen   chan adapter.Phase
}

func (p *phaseLog) report(st adapter.Status) {
	p.mu.Lock()
	p.phases = append(p.phases, st.Phase)
	p.mu.Unlock()
	select {
	case p.seen <- st.Phase:
	default:
	}
}

func (p *phaseLog) count(ph adapter.Phase) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, x := range p.phases {
		if x == ph {
			n++
		}
	}
	return n
}

func quietLog() *logrus.Entry {
	l := logrus.New()
	l.SetOutput(io.Discard)
	return logrus.NewEntry(l)
}

type noMetrics struct{}

func (noMetrics) Reconnect()      {}
func (noMetrics) Rejected(string) {}

func TestCredentialCheckRejectedOnce(t *testing.T) {
	p := &phaseLog{seen: make(chan adapter.Phase, 16)}
	c := adapter.CredentialCheck{Life: adapter.NewLife("t", p.report), Log: quietLog(), Metrics: noMetrics{}}
	err := fmt.Errorf("send: %w", adapter.ErrUnauthorized)
	c.Rejected(err, "t: rejected")
	c.Rejected(err, "t: rejected")
	if n := p.count(adapter.PhaseFatal); n != 1 {
		t.Fatalf("%d fatal reports, want 1", n)
	}
}

func TestCredentialCheckRetriesThenConnects(t *testing.T) {
	p := &phaseLog{seen: make(chan adapter.Phase, 16)}
	c := adapter.CredentialCheck{Life: adapter.NewLife("t", p.report), Log: quietLog(), Metrics: noMetrics{},
		Backoff: adapter.Backoff{Min: time.Millisecond, Max: 2 * time.Millisecond}}
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx, func(context.Context) error {
			calls++
			if calls == 1 {
				return fmt.Errorf("check: %w", adapter.ErrTemporary)
			}
			return nil
		})
	}()
	deadline := time.After(10 * time.Second)
	for connected := false; !connected; {
		select {
		case ph := <-p.seen:
			connected = ph == adapter.PhaseConnected
		case <-deadline:
			t.Fatal("never connected")
		}
	}
	cancel()
	<-done
	if calls != 2 || p.count(adapter.PhaseReconnecting) != 1 {
		t.Fatalf("calls %d, reconnecting reports %d; want 2 and 1", calls, p.count(adapter.PhaseReconnecting))
	}
	// A check that found the credentials rejected makes a later Rejected silent.
	c2 := adapter.CredentialCheck{Life: adapter.NewLife("t", p.report), Log: quietLog(), Metrics: noMetrics{}}
	c2.Run(context.Background(), func(context.Context) error { return errors.Join(adapter.ErrUnauthorized) })
	before := p.count(adapter.PhaseFatal)
	c2.Rejected(adapter.ErrUnauthorized, "t: rejected")
	if p.count(adapter.PhaseFatal) != before {
		t.Fatal("Rejected reported again after the check's fatal end")
	}
}
