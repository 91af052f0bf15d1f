// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"github.com/heraldgw/herald/pkg/adapter"
)

func init() {
	for _, domain := range []string{DomainFeishu, DomainLark} {
		// "lark" is the same adapter with the international domain as
		// default, so that `platforms: {lark: {app_id: …}}` works without a
		// type: line.
		t := adapter.Define(domain, func() *Config { return newConfig(domain) }, New)
		// Feishu drops a message whose uuid it saw in the past hour, so
		// the core may retry a send whose outcome is unknown.
		t.DeduplicatesSends = true
		adapter.Register(t)
	}
}
