// SPDX-License-Identifier: Apache-2.0

package webhook_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/webhook"
	"github.com/heraldgw/herald/pkg/adapter/webhook/webhooktest"
	"github.com/heraldgw/herald/pkg/message"
)

const conformanceSecret = "conformance-secret"

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform{
		Type:    webhook.TypeName,
		Passive: true,
		Configure: func(t testing.TB, conf any, url string) {
			c := conf.(*webhook.Config)
			c.Secret = adaptertest.SecretFile(t, "secret", conformanceSecret)
			c.ReplyURL = url
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			r := webhooktest.NewReceiver(t)
			return adaptertest.Fake{
				URL: r.URL,
				Redeliver: func(t testing.TB, a adapter.Adapter, start func()) {
					start()
					h := a.(adapter.RouteProvider).Routes()[0].Handler
					body := []byte(`{"conversation_id":"c1","user_id":"u1","text":"twice"}`)
					for range 2 {
						req, err := webhooktest.NewRequest(context.Background(), "/hooks/webhook", conformanceSecret, body, "msg_twice")
						if err != nil {
							t.Fatal(err)
						}
						rec := httptest.NewRecorder()
						h.ServeHTTP(rec, req)
						if rec.Code != http.StatusAccepted {
							t.Fatalf("POST: %d %s", rec.Code, rec.Body)
						}
					}
				},
			}
		},
		Outbound: &message.Outbound{Platform: "webhook", ChatID: "c1", Text: "hello"},
	})
}
