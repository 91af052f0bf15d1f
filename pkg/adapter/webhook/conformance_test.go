// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

const conformanceSecret = "conformance-secret"

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[webhook.Config]{
		Type:    webhook.TypeName,
		Passive: true,
		Configure: func(t testing.TB, c *webhook.Config, url string) {
			c.Secret = adaptertest.SecretFile(t, "secret", conformanceSecret)
			c.ReplyURL = url
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			r := webhooktest.NewReceiver(t)
			body := []byte(`{"conversation_id":"c1","user_id":"u1","text":"twice"}`)
			return adaptertest.Fake{URL: r.URL, Callback: func(ctx context.Context, path string) (*http.Request, error) {
				return webhooktest.NewRequest(ctx, path, conformanceSecret, body, "msg_twice")
			}}
		},
		Outbound: &message.Outbound{Platform: "webhook", ChatID: "c1", Text: "hello"},
	})
}
