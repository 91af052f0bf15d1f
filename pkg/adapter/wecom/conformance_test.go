// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"context"
	"net/http"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform{
		Type: TypeName,
		// Passive as a type (callbacks start herald), but the adapter
		// fetches an access token at start, so the suite's connecting and
		// backoff states apply.
		Passive:   false,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := wecomtest.New(t)
			return adaptertest.Fake{
				URL: fake.URL,
				Redeliver: func(t testing.TB, a adapter.Adapter, start func()) {
					start()
					h := a.(adapter.RouteProvider).Routes()[1].Handler
					cb := fake.Text(wecomtest.Message{ID: "7000000000000000001", From: "zhangsan", Text: "twice"})
					adaptertest.ServeTwice(t, h, func() (*http.Request, error) {
						return cb.Request(context.Background(), "/wecom/wecom")
					})
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "zhangsan", ReplyTo: "1", Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's defaults.
func configure(t testing.TB, conf any, url string) {
	c := conf.(*Config)
	c.CorpID = wecomtest.DefaultCorpID
	c.AgentID = wecomtest.DefaultAgentID
	c.Secret = adaptertest.SecretFile(t, "secret", wecomtest.DefaultSecret)
	c.Token = adaptertest.SecretFile(t, "token", wecomtest.DefaultToken)
	c.EncodingAESKey = adaptertest.SecretFile(t, "aes-key", wecomtest.DefaultEncodingAESKey)
	c.APIURL = url
}
