// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/feishu/feishutest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type: "feishu",
		Configure: func(t testing.TB, c *Config, url string) {
			c.AppID = "cli_test"
			c.AppSecret = adaptertest.SecretFile(t, "app_secret", "test-secret")
			c.BaseURL = url
		},
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := feishutest.New(t, feishutest.Options{})
			return adaptertest.Fake{
				URL: fake.URL(),
				Twice: func(t testing.TB) {
					ev := feishutest.Event{EventID: "ev_twice", MessageID: "om_twice", Text: "twice"}
					fake.Push(ev)
					fake.Push(ev)
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("\x89PNG conformance")
					fake.AddResource("om_media", "img_media", "image", feishutest.Resource{Data: data, ContentType: "image/png"})
					in, att := imageAttachment("om_media", "img_media")
					return in, att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: "feishu", ChatID: "oc_chat", Text: "hello"},
	})
}
