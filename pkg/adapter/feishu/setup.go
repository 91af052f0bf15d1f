// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"fmt"

	"github.com/heraldgw/herald/pkg/adapter"
)

func init() {
	adapter.Register(adapter.Type{
		Name:      "feishu",
		NewConfig: func() any { return newConfig(DomainFeishu) },
		New:       factory,
	})
	// "lark" is the same adapter with the international domain as default,
	// so that `platforms: {lark: {app_id: …}}` works without a type: line.
	adapter.Register(adapter.Type{
		Name:      "lark",
		NewConfig: func() any { return newConfig(DomainLark) },
		New:       factory,
	})
}

func factory(conf any, env adapter.Env) (adapter.Adapter, error) {
	c, ok := conf.(*Config)
	if !ok {
		return nil, fmt.Errorf("feishu: configuration is %T, want *feishu.Config", conf)
	}
	return New(c, env)
}
