// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type: TypeName,
		Configure: func(t testing.TB, c *Config, url string) {
			c.URL = url
			c.RequestTimeout = testRequestTimeout
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := signaltest.New(t, account)
			return adaptertest.Fake{
				URL: fake.URL,
				Blackhole: func(t testing.TB) {
					fake.Wait(t, wait, "an open stream", func() bool { return fake.Opened() > 0 })
					fake.Blackhole()
				},
				Twice: func(t testing.TB) {
					// A replay: the daemon writes one envelope twice.
					env := fake.Message("twice")
					fake.Push(env)
					fake.Push(env)
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "+15550001", Text: "hello"},
	})
}
