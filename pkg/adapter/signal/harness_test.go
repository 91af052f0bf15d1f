// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test timing: short enough for a quick package run, long enough that a
// loaded machine does not hit them by accident.
const (
	testRequestTimeout = 2 * time.Second
	wait               = adaptertest.Wait
	account            = "+15550100"
)

type harness struct {
	adaptertest.Rig
	fake *signaltest.Server
	a    *Adapter
	conf *Config
}

// newHarness builds an adapter against a fresh fake; the state directory
// is a temporary one. At the end of the test it stops the adapter and
// checks that no goroutine is left.
func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs last
	h := &harness{fake: signaltest.New(t, account)}
	h.conf = NewConfig()
	h.conf.URL = h.fake.URL
	h.conf.RequestTimeout = testRequestTimeout
	for _, f := range tweak {
		f(h.conf)
	}
	h.Rig = adaptertest.NewRig(t, TypeName)
	h.a = h.build(t)
	return h
}

func (h *harness) build(t *testing.T) *Adapter {
	t.Helper()
	a := adaptertest.Build(t, New, h.conf, h.Env)
	a.backoff = adaptertest.FastBackoff
	return a
}

// start starts h.a and waits until its stream is open.
func (h *harness) start(t *testing.T) {
	t.Helper()
	h.Rig.Start(t, h.a)
}
