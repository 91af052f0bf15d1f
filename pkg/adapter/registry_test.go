// SPDX-License-Identifier: Apache-2.0

package adapter_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

var registerOnce sync.Once

type defConfig struct{ N int }

type defAdapter struct{ env adapter.Env }

func (*defAdapter) Start(context.Context, adapter.Inbox) error { return nil }
func (*defAdapter) Send(context.Context, *message.Outbound) (adapter.SendResult, error) {
	return adapter.SendResult{}, nil
}
func (*defAdapter) Stop(context.Context) error { return nil }

// TestDefine: the typed constructor gets its own configuration type and an
// Env without nil fields; a foreign configuration is an error, not a panic.
func TestDefine(t *testing.T) {
	typ := adapter.Define("deftest", func() *defConfig { return &defConfig{N: 7} }, func(c *defConfig, env adapter.Env) (*defAdapter, error) {
		if c.N != 7 {
			t.Errorf("config %+v", c)
		}
		return &defAdapter{env: env}, nil
	})
	typ.DeduplicatesSends = true
	registerOnce.Do(func() { adapter.Register(typ) })
	got, ok := adapter.Lookup("deftest")
	if !ok || !adapter.DeduplicatesSends("deftest") || adapter.DeduplicatesSends("nosuchtype") {
		t.Fatalf("lookup %v, dedup %v", ok, adapter.DeduplicatesSends("deftest"))
	}
	a, err := got.New(got.NewConfig(), adapter.Env{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	env := a.(*defAdapter).env
	if env.Log == nil || env.Report == nil || env.Metrics == nil || env.Name != "x" {
		t.Fatalf("env not completed: %+v", env)
	}
	env.Report(adapter.Status{})
	if _, err := got.New(&struct{}{}, adapter.Env{}); err == nil || !strings.Contains(err.Error(), "deftest: configuration is *struct {}") {
		t.Fatalf("foreign configuration: %v", err)
	}
	if _, err := got.New((*defConfig)(nil), adapter.Env{}); err == nil {
		t.Fatal("nil configuration accepted")
	}
}
