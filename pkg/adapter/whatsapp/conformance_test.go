// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"net/http"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform{
		Type: TypeName,
		// Passive as a type (webhooks start herald), but the adapter
		// checks its token with the Graph API at start, so the suite's
		// connecting and backoff states apply.
		Passive:   false,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := whatsapptest.New(t)
			return adaptertest.Fake{
				URL: fake.URL,
				Redeliver: func(t testing.TB, a adapter.Adapter, start func()) {
					start()
					h := a.(adapter.RouteProvider).Routes()[1].Handler
					body := fake.Text(whatsapptest.Message{ID: "wamid.twice", From: "4915550001", Text: "twice"})
					adaptertest.ServeTwice(t, h, func() (*http.Request, error) {
						return whatsapptest.NewRequest(context.Background(), "/whatsapp/whatsapp", fake.AppSecret, body)
					})
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "4915550001", ReplyTo: "wamid.x", Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's defaults.
func configure(t testing.TB, conf any, url string) {
	c := conf.(*Config)
	c.PhoneNumberID = whatsapptest.DefaultPhoneNumberID
	c.AccessToken = adaptertest.SecretFile(t, "token", whatsapptest.DefaultToken)
	c.AppSecret = adaptertest.SecretFile(t, "app-secret", whatsapptest.DefaultAppSecret)
	c.VerifyToken = adaptertest.SecretFile(t, "verify-token", whatsapptest.DefaultVerifyToken)
	c.GraphURL = url
}
