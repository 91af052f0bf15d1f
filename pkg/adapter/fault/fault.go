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
	adapter.Register(adapter.Type{
		Name:      "fault",
		NewConfig: func() any { return &Config{} },
		New:       New,
		Hidden:    true,
	})
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
	name string
	cfg  Config
	env  adapter.Env

	mu   sync.Mutex
	sent []message.Outbound
}

// New builds a fault platform.
func New(conf any, env adapter.Env) (adapter.Adapter, error) {
	c, ok := conf.(*Config)
	if !ok {
		return nil, fmt.Errorf("fault: unexpected config %T", conf)
	}
	return &Adapter{name: env.Name, cfg: *c, env: env}, nil
}

// Name implements adapter.Adapter.
func (a *Adapter) Name() string { return a.name }

// Start implements adapter.Adapter.
func (a *Adapter) Start(ctx context.Context, _ adapter.Inbox) error {
	switch {
	case a.cfg.Fatal:
		a.env.Report(adapter.Status{Phase: adapter.PhaseFatal, Err: fmt.Errorf("fault: injected fatal error: %w", adapter.ErrUnauthorized)})
	case a.cfg.Reconnecting:
		a.env.Report(adapter.Status{Phase: adapter.PhaseReconnecting, Err: errors.New("fault: injected connection failure")})
	default:
		a.env.Report(adapter.Status{Phase: adapter.PhaseConnected})
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
		return nil
	}
	a.env.Log.Warn("fault injection: Stop hangs and ignores its context")
	hung.Add(1)
	defer hung.Add(-1)
	<-release
	return nil
}

// Interface guards.
var _ adapter.Adapter = (*Adapter)(nil)
