// SPDX-License-Identifier: Apache-2.0

package matrix

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/matrix/matrixtest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Test timing: short enough for a quick package run, long enough that a
// loaded machine does not hit them by accident.
const (
	testPollTimeout    = time.Second
	testRequestTimeout = 2 * time.Second
	wait               = adaptertest.Wait
)

const (
	room = "!room:fake.test"
	ann  = "@ann:fake.test"
)

func testConfig(t testing.TB, url string) *Config {
	c := NewConfig()
	c.Homeserver = url
	c.AccessToken = adaptertest.SecretFile(t, "token", matrixtest.DefaultToken)
	c.PollTimeout = testPollTimeout
	c.RequestTimeout = testRequestTimeout
	c.JoinInvitesFrom = []string{ann}
	return c
}

type harness struct {
	adaptertest.Rig
	fake *matrixtest.Server
	a    *Adapter
	conf *Config
}

// newHarness builds an adapter, with a state directory, against a fresh
// fake. At the end of the test it stops the adapter, checks that no
// goroutine is left and that the token appears in no log entry.
func newHarness(t *testing.T, tweak ...func(*Config)) *harness {
	t.Helper()
	t.Cleanup(func() { goleak.VerifyNone(t) }) // registered first: runs last
	h := &harness{fake: matrixtest.New(t)}
	h.conf = testConfig(t, h.fake.URL)
	for _, f := range tweak {
		f(h.conf)
	}
	h.Rig = adaptertest.NewRig(t, "mx")
	h.a = h.build(t)
	adaptertest.NoSecretLogged(t, h.Logs, h.fake.Token)
	return h
}

// build makes another adapter on the same fake, state directory, inbox
// and recorders (a restart).
func (h *harness) build(t *testing.T) *Adapter {
	t.Helper()
	a := adaptertest.Build(t, New, h.conf, h.Env)
	a.backoff = adaptertest.FastBackoff
	return a
}

// start starts the adapter and waits until it is connected and past its
// initial sync, so that what is pushed next is new.
func (h *harness) start(t *testing.T) {
	t.Helper()
	h.Rig.Start(t, h.a)
	h.fake.Wait(t, wait, "a sync from the initial position", func() bool { return len(h.fake.Since()) > h.fake.InitialSyncs() })
}
