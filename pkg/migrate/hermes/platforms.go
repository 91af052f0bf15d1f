// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"fmt"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/heraldgw/herald/pkg/store"
)

// credSpec is one secret of a platform: the .env name, the config.yaml key
// Hermes also reads it from, the herald key and credential name.
type credSpec struct {
	env, yamlKey, heraldKey, credential string
}

var platformCreds = map[string][]credSpec{
	"telegram": {{"TELEGRAM_BOT_TOKEN", "token", "token", "telegram-token"}},
	"discord":  {{"DISCORD_BOT_TOKEN", "token", "token", "discord-token"}},
	"slack": {
		{"SLACK_APP_TOKEN", "app_token", "app_token", "slack-app-token"},
		{"SLACK_BOT_TOKEN", "token", "bot_token", "slack-bot-token"},
	},
	"feishu": {{"FEISHU_APP_SECRET", "app_secret", "app_secret", "feishu-app-secret"}},
}

// mentionKey is the herald key that Hermes' require_mention becomes.
var mentionKey = map[string]string{
	"telegram": "group_mention_only",
	"discord":  "require_mention",
	"feishu":   "require_mention",
}

// mapPlatform maps one platform herald has an adapter for.
func (b *builder) mapPlatform(p string) {
	prefix := heraldPlatforms[p]
	var body []*yaml.Node
	add := func(k string, v *yaml.Node, comment string) { body = append(body, key(k, comment), v) }

	// Credentials: .env first (Hermes applies it over config.yaml).
	type cred struct {
		spec       credSpec
		value, src string
	}
	var creds []cred
	var missing []string
	envCreds := true
	for _, c := range platformCreds[p] {
		if v, ok := b.src.Getenv(c.env); ok {
			creds = append(creds, cred{c, v, c.env})
			b.overriddenP(p, c.yamlKey, c.env)
			continue
		}
		envCreds = false
		if v, path, ok := b.pget(p, c.yamlKey); ok && scalar(v) != "" {
			creds = append(creds, cred{c, scalar(v), path})
			continue
		}
		missing = append(missing, c.env)
	}
	appID, appIDFrom := "", ""
	if p == "feishu" {
		appID, appIDFrom = b.setting(p, "FEISHU_APP_ID", "app_id")
		if appIDFrom != "FEISHU_APP_ID" {
			envCreds = false
		}
		if appIDFrom == "" {
			missing = append(missing, "FEISHU_APP_ID")
		}
	}
	if len(missing) > 0 {
		if b.mentioned(p) {
			for _, r := range b.rows {
				if b.belongs(r.Setting, p) {
					r.Status, r.Herald, r.Note = NotMigrated, "", "the "+p+" platform is not migrated (see the "+p+" row)"
				}
			}
			b.set(p, NotMigrated, "", "no "+strings.Join(missing, ", ")+", which herald needs for it")
		}
		return
	}

	// Hermes turns a platform on when its credentials are in .env, unless
	// config.yaml says enabled: false; Feishu is on whenever FEISHU_APP_ID
	// and FEISHU_APP_SECRET are both set, whatever config.yaml says.
	enabled := envCreds
	if v, path, ok := b.pget(p, "enabled"); ok {
		on, _ := boolish(v)
		if p == "feishu" && envCreds {
			b.set(path, Mapped, "platforms.feishu.enabled", "Hermes ignores it while FEISHU_APP_ID and FEISHU_APP_SECRET are in .env")
		} else {
			enabled = on
			b.set(path, Mapped, "platforms."+p+".enabled", "")
		}
	}
	if !enabled {
		add("enabled", boolNode(false), "Off in Hermes too.")
	}

	b.mapAccess(p, prefix, add)

	if p == "feishu" {
		add("app_id", str(appID), "")
		b.set(appIDFrom, Mapped, "platforms.feishu.app_id", "")
	}
	for _, c := range creds {
		add(c.spec.heraldKey, credential(c.spec.credential), "")
		b.secret(c.spec.credential, c.src, c.value)
		b.set(c.src, Mapped, fmt.Sprintf("platforms.%s.%s (credential %s)", p, c.spec.heraldKey, c.spec.credential), "")
	}
	b.mapPlatformOptions(p, prefix, add)
	b.mapHome(p, prefix, add)

	b.platforms = append(b.platforms, key(p, ""), &yaml.Node{Kind: yaml.MappingNode, Content: body})
	b.plan.Platforms = append(b.plan.Platforms, p)
	if enabled {
		b.turnOff(p)
	}
}

// mentioned reports whether the Hermes home has any setting of platform p.
func (b *builder) mentioned(p string) bool {
	for _, r := range b.rows {
		if b.belongs(r.Setting, p) {
			return true
		}
	}
	return false
}

func (b *builder) belongs(setting, p string) bool {
	if strings.HasPrefix(setting, heraldPlatforms[p]) {
		return true
	}
	for _, blk := range blocks(p) {
		if setting == blk || strings.HasPrefix(setting, blk+".") {
			return true
		}
	}
	return false
}

// mapAccess maps who may talk to the bot.
func (b *builder) mapAccess(p, prefix string, add func(string, *yaml.Node, string)) {
	allowAll := false
	var allowFrom []string // settings that granted allow-all
	var users []string
	var userFrom []string
	for _, name := range []string{prefix + "ALLOW_ALL_USERS", "GATEWAY_ALLOW_ALL_USERS"} {
		if v, ok := b.src.Getenv(name); ok {
			if on, _ := boolish(v); on {
				allowAll = true
				allowFrom = append(allowFrom, name)
			} else {
				b.set(name, Mapped, "platforms."+p+".allow_all: false", "")
			}
		}
	}
	for _, name := range []string{prefix + "ALLOWED_USERS", "GATEWAY_ALLOWED_USERS"} {
		if v, ok := b.src.Getenv(name); ok {
			ids := list(v)
			for _, id := range ids {
				if id == "*" {
					allowAll = true
					allowFrom = append(allowFrom, name)
				} else {
					users = append(users, id)
				}
			}
			userFrom = append(userFrom, name)
		}
	}
	if v, path, ok := b.pget(p, "allow_from"); ok {
		users = append(users, list(v)...)
		userFrom = append(userFrom, path)
	}
	users = dedupe(users)
	// The users approved by pairing go to herald's pairing store (see
	// mapApprovals), not to the allowlist: herald pairing revoke can
	// then take them out again.
	if approved := b.src.Approved[p]; len(approved) > 0 {
		if b.plan.Approvals == nil {
			b.plan.Approvals = map[string][]string{}
		}
		b.plan.Approvals[p] = approved
	}

	target := "platforms." + p + ".allowed_users"
	switch {
	case allowAll:
		add("allow_all", boolNode(true), "Everyone may talk to the agent, as in Hermes.")
		for _, f := range allowFrom {
			b.set(f, Mapped, platformsKey(f, p)+".allow_all: true", "")
		}
		for _, f := range userFrom {
			if !contains(allowFrom, f) {
				b.set(f, Mapped, platformsKey(f, p)+".allow_all: true", "the list is covered by allow_all")
			}
		}
	case len(users) > 0:
		add("allowed_users", seq(users), "")
		for _, f := range userFrom {
			b.set(f, Mapped, platformsKey(f, p)+".allowed_users", "")
		}
	case len(b.plan.Approvals[p]) > 0:
		b.plan.Notices = append(b.plan.Notices, fmt.Sprintf("%s: no allowlist in Hermes: herald lets in the %d users approved by pairing there (imported into its pairing store at start) and refuses everyone else until you list user ids in %s or let them pair (dm_policy: pairing)", p, len(b.plan.Approvals[p]), target))
	default:
		b.plan.Notices = append(b.plan.Notices, fmt.Sprintf("%s: no allowed users in Hermes: herald refuses everyone until you list user ids in %s or let them pair (dm_policy: pairing, then herald pairing approve)", p, target))
	}

	mode, from := b.unauthorized, b.unauthorizedFrom
	if v, path, ok := b.pget(p, "unauthorized_dm_behavior"); ok {
		mode, from = strings.ToLower(scalar(v)), path
	}
	switch {
	case from == "":
	case allowAll:
		if r := b.idx[from]; r == nil || r.Status != Mapped {
			b.set(from, NotNeeded, "", "allow_all: nobody is unauthorized")
		}
	case mode == "ignore":
		add("unauthorized", plain("ignore"), "")
		b.set(from, Mapped, "platforms.*.unauthorized: ignore", "")
	case mode == "pair":
		add("dm_policy", plain("pairing"), "An unknown user's direct message gets a pairing code: herald pairing approve PLATFORM CODE.")
		b.set(from, Mapped, platformsKey(from, p)+".dm_policy: pairing", "")
	default:
		b.set(from, Mapped, "platforms.*.unauthorized: reply", "an unknown user gets a short refusal")
	}
}

// platformsKey is the herald section a Hermes setting maps to:
// platforms.* for the gateway-wide GATEWAY_ settings.
func platformsKey(setting, p string) string {
	if strings.HasPrefix(setting, "GATEWAY_") {
		return "platforms.*"
	}
	return "platforms." + p
}

// mapPlatformOptions maps mention rules and the platform's own options.
func (b *builder) mapPlatformOptions(p, prefix string, add func(string, *yaml.Node, string)) {
	// require_mention: .env wins over config.yaml; for Telegram a
	// top-level require_mention applies when the telegram block has none.
	var mention any
	from := ""
	if v, ok := b.src.Getenv(prefix + "REQUIRE_MENTION"); ok {
		mention, from = v, prefix+"REQUIRE_MENTION"
		b.overriddenP(p, "require_mention", from)
		if p == "telegram" {
			b.overridden("require_mention", from)
		}
	} else if v, path, ok := b.pget(p, "require_mention"); ok {
		mention, from = v, path
	} else if v, ok := b.dig("require_mention"); ok && p == "telegram" {
		mention, from = v, "require_mention"
	}
	if from != "" {
		on, ok := boolish(mention)
		switch hk := mentionKey[p]; {
		case !ok:
			b.set(from, Unsupported, "", "not a boolean; ignored")
		case hk != "":
			add(hk, boolNode(on), "")
			b.set(from, Mapped, "platforms."+p+"."+hk, "")
		case on:
			b.set(from, Mapped, "platforms."+p, "herald's Slack adapter answers in channels only when mentioned")
		default:
			b.set(from, Unsupported, "", "herald's Slack adapter answers in channels only when mentioned")
		}
	}
	switch p {
	case "slack":
		if v, path, ok := b.pget(p, "reply_in_thread"); ok {
			if on, ok := boolish(v); ok {
				add("reply_in_thread", boolNode(on), "")
				b.set(path, Mapped, "platforms.slack.reply_in_thread", "")
			}
		}
	case "feishu":
		domain, from := b.setting(p, "FEISHU_DOMAIN", "domain")
		domain = strings.ToLower(domain)
		switch {
		case from == "":
		case domain == "lark":
			add("domain", plain("lark"), "")
			b.set(from, Mapped, "platforms.feishu.domain: lark", "")
		case domain == "feishu":
			b.set(from, Mapped, "platforms.feishu.domain", "feishu is herald's default")
		default:
			b.set(from, Unsupported, "", "neither feishu nor lark: set platforms.feishu.base_url by hand")
		}
		mode, from := b.setting(p, "FEISHU_CONNECTION_MODE", "connection_mode")
		mode = strings.ToLower(mode)
		switch {
		case from == "":
		case mode == "websocket":
			b.set(from, Mapped, "platforms.feishu", "herald uses the long connection too")
		default:
			b.set(from, Unsupported, "", "herald uses the long connection only: in the Feishu developer console, switch the app's event subscription to \"receive events through persistent connection\"")
			b.plan.Notices = append(b.plan.Notices, "feishu: Hermes received events by webhook; herald uses the long connection: change the app's event subscription mode in the Feishu developer console")
		}
	case "telegram":
		if _, ok := b.src.Getenv("TELEGRAM_WEBHOOK_URL"); ok {
			b.plan.Notices = append(b.plan.Notices, "telegram: Hermes set a webhook on this bot, and Telegram refuses getUpdates (herald's polling) while one is set: once Hermes' Telegram is off, delete it with: curl -sS \"https://api.telegram.org/bot$(cat "+b.credDir+"/telegram-token)/deleteWebhook\"")
		}
	}
}

// turnOff says how to keep Hermes from consuming platform p as well.
func (b *builder) turnOff(p string) {
	cfg := b.src.Home + "/config.yaml"
	switch p {
	case "feishu":
		b.plan.TurnOff = append(b.plan.TurnOff, fmt.Sprintf("feishu: in %s delete (or comment out) FEISHU_APP_ID and FEISHU_APP_SECRET. Hermes turns Feishu on whenever both are set, even with enabled: false; two long connections would each get part of the events.", b.envPath()))
	default:
		// The setting Hermes reads first wins: set enabled where it is
		// already set, else under platforms:.
		key := "platforms." + p + ".enabled"
		if _, path, ok := b.pget(p, "enabled"); ok {
			key = path
		}
		b.plan.TurnOff = append(b.plan.TurnOff, fmt.Sprintf("%s: in %s set %s: false (Hermes honours an explicit false even with %s in .env).", p, cfg, key, platformCreds[p][len(platformCreds[p])-1].env))
	}
}

// mapApprovals records the pairing approvals: those of migrated platforms
// go to herald's pairing store through the import file (Plan.Approvals);
// the others stay in Hermes.
func (b *builder) mapApprovals() {
	names := make([]string, 0, len(b.src.Approved))
	for p := range b.src.Approved {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		setting := fmt.Sprintf("pairing: %s-approved.json (%d approved)", p, len(b.src.Approved[p]))
		switch {
		case contains(b.plan.Platforms, p):
			b.set(setting, Mapped, "herald pairing store ("+store.PairingImportFile+")", "herald imports them once at start, so they need no new pairing code; herald pairing list shows them")
		case heraldPlatforms[p] != "":
			b.set(setting, NotMigrated, "", "the platform was not migrated")
		default:
			b.set(setting, StaysHermes, "", staysNote(p))
		}
	}
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func contains(s []string, x string) bool {
	for _, y := range s {
		if y == x {
			return true
		}
	}
	return false
}
