// SPDX-License-Identifier: Apache-2.0

package wecom

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/wecom/wecomtest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:      TypeName,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			fake := wecomtest.New(t)
			cb := fake.Text(wecomtest.Message{ID: "7000000000000000001", From: "zhangsan", Text: "twice"})
			return adaptertest.Fake{
				URL:      fake.URL,
				Callback: cb.Request,
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					data := []byte("\x89PNG conformance")
					att := message.Attachment{Kind: message.MediaImage, Ref: fake.AddMedia(data, "image/png", "a.png")}
					return &message.Inbound{Platform: TypeName, ChatID: "zhangsan", Attachments: []message.Attachment{att}}, &att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "zhangsan", ReplyTo: "1", Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's defaults.
func configure(t testing.TB, c *Config, url string) {
	c.CorpID = wecomtest.DefaultCorpID
	c.AgentID = wecomtest.DefaultAgentID
	c.Secret = adaptertest.SecretFile(t, "secret", wecomtest.DefaultSecret)
	c.Token = adaptertest.SecretFile(t, "token", wecomtest.DefaultToken)
	c.EncodingAESKey = adaptertest.SecretFile(t, "aes-key", wecomtest.DefaultEncodingAESKey)
	c.APIURL = url
}
