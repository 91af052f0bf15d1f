// SPDX-License-Identifier: Apache-2.0

package all

import (
	// Built-in adapter types, registered in their init functions.
	_ "github.com/heraldgw/herald/pkg/adapter/discord"
	_ "github.com/heraldgw/herald/pkg/adapter/feishu"
	_ "github.com/heraldgw/herald/pkg/adapter/matrix"
	_ "github.com/heraldgw/herald/pkg/adapter/mattermost"
	_ "github.com/heraldgw/herald/pkg/adapter/signal"
	_ "github.com/heraldgw/herald/pkg/adapter/slack"
	_ "github.com/heraldgw/herald/pkg/adapter/telegram"
	_ "github.com/heraldgw/herald/pkg/adapter/webhook"
	_ "github.com/heraldgw/herald/pkg/adapter/whatsapp"
)
