// SPDX-License-Identifier: Apache-2.0

//go:build heraldtest

package fault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/config"
	"github.com/heraldgw/herald/pkg/message"
)

// Config of a fault platform.
type Config struct {
	// HangStop makes Stop block forever, ignoring its context.
	HangStop bool `yaml:"hang_stop"`
	// Fatal makes the platform report a fatal connection error at Start.
	Fatal bool `yaml:"fatal"`
	// Reconnecting makes the platform report that it keeps reconnecting.
	Reconnecting bool `yaml:"reconnecting"`
}

// Validate implements config.Validator.
func (c *Config) Validate() error {
	if c.Fatal && c.Reconnecting {
		return config.Errorf("fatal", "fatal and reconnecting exclude each other")
	}
	return nil
}

func init() {
	t := adapter.Define("fault", func() *Config { return &Config{} }, New)
	t.Hidden = true
	adapter.Register(t)
}

// hung counts Stop calls blocked by HangStop, and release lets tests free
// them so goroutine-leak checks can pass.
var (
	hung    atomic.Int64
	release = make(chan struct{})
	relOnce sync.Once
)

// Hung returns the number of Stop calls currently blocked by hang_stop.
func Hung() int64 { return hung.Load() }

// ReleaseAll unblocks every hung Stop, in this process, for good. For test
// cleanup only.
func ReleaseAll() { relOnce.Do(func() { close(release) }) }

// Adapter is the fault platform.
type Adapter struct {
	cfg  Config
	env  adapter.Env
	life *adapter.Life

	mu   sync.Mutex
	sent []message.Outbound
}

// New builds a fault platform.
func New(c *Config, env adapter.Env) (*Adapter, error) {
	env = env.Defaults()
	return &Adapter{cfg: *c, env: env, life: adapter.NewLife("fault", env.Report)}, nil
}

// Start implements adapter.Adapter.
func (a *Adapter) Start(ctx context.Context, inbox adapter.Inbox) error {
	if err := a.life.Start(ctx, inbox, nil); err != nil {
		return err
	}
	switch {
	case a.cfg.Fatal:
		a.life.Report(adapter.Status{Phase: adapter.PhaseFatal, Err: fmt.Errorf("fault: injected fatal error: %w", adapter.ErrUnauthorized)})
	case a.cfg.Reconnecting:
		a.life.Report(adapter.Status{Phase: adapter.PhaseReconnecting, Err: errors.New("fault: injected connection failure")})
	default:
		a.life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	}
	return nil
}

// Send records the message.
func (a *Adapter) Send(ctx context.Context, m *message.Outbound) (adapter.SendResult, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sent = append(a.sent, *m)
	return adapter.SendResult{MessageID: fmt.Sprint(len(a.sent))}, nil
}

// Stop returns at once, or with hang_stop never (until ReleaseAll), whatever
// its context says.
func (a *Adapter) Stop(ctx context.Context) error {
	if !a.cfg.HangStop {
		return a.life.Stop(ctx, nil)
	}
	a.env.Log.Warn("fault injection: Stop hangs and ignores its context")
	hung.Add(1)
	defer hung.Add(-1)
	<-release
	return nil
}

// Interface guards.
var _ adapter.Adapter = (*Adapter)(nil)
