// SPDX-License-Identifier: Apache-2.0

package whatsapp

import (
	"context"
	"net/http"
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/whatsapp/whatsapptest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:      TypeName,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := whatsapptest.New(t)
			body := fake.Text(whatsapptest.Message{ID: "wamid.twice", From: "4915550001", Text: "twice"})
			return adaptertest.Fake{
				URL: fake.URL,
				Callback: func(ctx context.Context, path string) (*http.Request, error) {
					return whatsapptest.NewRequest(ctx, path, fake.AppSecret, body)
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("jpeg conformance")
					id := fake.AddMedia(whatsapptest.Media{MIME: "image/jpeg", Data: data})
					att := message.Attachment{Kind: message.MediaImage, Ref: id, MIME: "image/jpeg"}
					return &message.Inbound{Platform: TypeName, ChatID: ann, Attachments: []message.Attachment{att}}, &att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "4915550001", ReplyTo: "wamid.x", Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's defaults.
func configure(t testing.TB, c *Config, url string) {
	c.PhoneNumberID = whatsapptest.DefaultPhoneNumberID
	c.AccessToken = adaptertest.SecretFile(t, "token", whatsapptest.DefaultToken)
	c.AppSecret = adaptertest.SecretFile(t, "app-secret", whatsapptest.DefaultAppSecret)
	c.VerifyToken = adaptertest.SecretFile(t, "verify-token", whatsapptest.DefaultVerifyToken)
	c.GraphURL = url
}
