// SPDX-License-Identifier: Apache-2.0

package dingtalk

import (
	"testing"

	"github.com/heraldgw/herald/pkg/adapter/adaptertest"
	"github.com/heraldgw/herald/pkg/adapter/dingtalk/dingtalktest"
	"github.com/heraldgw/herald/pkg/message"
)

func TestConformance(t *testing.T) {
	adaptertest.Conformance(t, adaptertest.Platform[Config]{
		Type:      TypeName,
		Configure: configure,
		Fake: func(t testing.TB) adaptertest.Fake {
			srv := dingtalktest.New(t, dingtalktest.Options{})
			return adaptertest.Fake{
				URL: srv.URL,
				Blackhole: func(t testing.TB) {
					srv.Await(t, "stream connected", wait, (*dingtalktest.Server).Connected)
					srv.Blackhole()
				},
				Twice: func(t testing.TB) {
					// DingTalk sends a message again when it thinks the
					// acknowledgement was lost: a new frame, the same msgId.
					srv.Push(dingtalktest.Msg{MsgID: "msgtwice", Text: "twice"})
					srv.Push(dingtalktest.Msg{MsgID: "msgtwice", Text: "twice"})
				},
				Media: func(t testing.TB, _ string) (*message.Inbound, *message.Attachment, []byte) {
					// A received file is fetched with its downloadCode and
					// the robot code that received it.
					data := []byte("\x89PNG conformance")
					att := message.Attachment{Kind: message.MediaImage, Ref: srv.AddFile(data)}
					in := &message.Inbound{Platform: TypeName, Meta: map[string]string{MetaRobotCode: dingtalktest.DefaultClientID}, Attachments: []message.Attachment{att}}
					return in, &att, data
				},
			}
		},
		Outbound: &message.Outbound{Platform: TypeName, ChatID: "cidfakeconversation", ChatType: message.ChatGroup, Text: "hello"},
	})
}

// configure fills a Config for the fake at url with the fake's defaults.
func configure(t testing.TB, c *Config, url string) {
	c.ClientID = dingtalktest.DefaultClientID
	c.ClientSecret = adaptertest.SecretFile(t, "client_secret", dingtalktest.DefaultClientSecret)
	c.APIURL = url
}
