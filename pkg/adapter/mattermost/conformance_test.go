// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/mattermost/mattermosttest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:      TypeName,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := mattermosttest.New(t, mattermosttest.DefaultToken)
			return adaptertest.Fake{
				URL: fake.URL,
				Blackhole: func(t testing.TB) {
					fake.Wait(t, wait, "a websocket", func() bool { return fake.Connections() == 1 })
					fake.Blackhole()
				},
				Twice: func(t testing.TB) {
					fake.Wait(t, wait, "a websocket", func() bool { return fake.Connections() == 1 })
					fake.PostTwice("dm", "ann", "twice")
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "town", Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's token.
func configure(t testing.TB, c *Config, url string) {
	c.Token = adaptertest.SecretFile(t, "token", mattermosttest.DefaultToken)
	c.URL = url
}
