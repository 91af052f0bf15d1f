// SPDX-License-Identifier: Apache-2.0

package signal

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/signal/signaltest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform{
		Type: TypeName,
		Configure: func(t testing.TB, conf any, url string) {
			c := conf.(*Config)
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
				Redeliver: func(t testing.TB, _ adapter.Adapter, start func()) {
					// A replay: the daemon writes one envelope twice.
					start()
					env := fake.Message("twice")
					fake.Push(env)
					fake.Push(env)
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "+15550001", Text: "hello"},
	})
}
