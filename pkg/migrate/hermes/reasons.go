// SPDX-License-Identifier: Apache-2.0

package hermes

import "strings"

// Status values of a Row.
const (
	Mapped      = "mapped"
	Unsupported = "not supported (yet)"
	NotNeeded   = "not needed"
	StaysHermes = "stays in Hermes"
	NotMigrated = "not migrated"
)

// heraldPlatforms are the Hermes platforms herald has an adapter for, with
// the prefix of their .env names.
var heraldPlatforms = map[string]string{
	"telegram": "TELEGRAM_",
	"discord":  "DISCORD_",
	"slack":    "SLACK_",
	"feishu":   "FEISHU_",
}

// hermesPlatforms are the platform names of Hermes' gateway (its Platform
// enum in gateway/config.py, plus Google Chat, a bundled plugin documented
// with the others), so a top-level config.yaml block of that name is a
// platform block.
var hermesPlatforms = map[string]bool{
	"telegram": true, "discord": true, "whatsapp": true, "whatsapp_cloud": true,
	"slack": true, "signal": true, "mattermost": true, "matrix": true,
	"homeassistant": true, "email": true, "sms": true, "dingtalk": true,
	"api_server": true, "webhook": true, "msgraph_webhook": true, "feishu": true,
	"wecom": true, "wecom_callback": true, "weixin": true, "bluebubbles": true,
	"qqbot": true, "yuanbao": true, "relay": true, "google_chat": true,
}

// unmappedHerald are the Hermes platforms (by their config.yaml name) for
// which herald has an adapter whose settings migrate does not map yet, with
// herald's platform type.
var unmappedHerald = map[string]string{
	"whatsapp_cloud": "whatsapp", "signal": "signal", "mattermost": "mattermost",
	"matrix": "matrix", "dingtalk": "dingtalk", "wecom_callback": "wecom",
}

// staysNote says why a Hermes platform's settings stay in Hermes.
func staysNote(platform string) string {
	if platform == "whatsapp" {
		return "herald's whatsapp adapter speaks only the WhatsApp Cloud API (Hermes' whatsapp_cloud): these settings stay in Hermes"
	}
	if t, ok := unmappedHerald[platform]; ok {
		return "herald has a " + t + " adapter, but migrate does not map its settings yet: it keeps running in Hermes until you configure platforms." + t + " by hand (see its README)"
	}
	return "herald has no " + platform + " adapter: this platform keeps running in Hermes"
}

// otherPlatformEnv maps .env prefixes of Hermes platforms herald has no
// adapter for to the platform's name.
var otherPlatformEnv = []struct{ prefix, name string }{
	{"WHATSAPP_CLOUD_", "whatsapp_cloud"}, {"WHATSAPP_", "whatsapp"},
	{"SIGNAL_", "signal"}, {"MATTERMOST_", "mattermost"}, {"MATRIX_", "matrix"},
	{"HASS_", "Home Assistant"}, {"EMAIL_", "Email"}, {"SMS_", "SMS"},
	{"TWILIO_", "SMS (Twilio)"}, {"DINGTALK_", "dingtalk"},
	{"WECOM_CALLBACK_", "wecom_callback"}, {"WECOM_", "WeCom"},
	{"WEIXIN_", "Weixin"}, {"BLUEBUBBLES_", "BlueBubbles"}, {"QQBOT_", "QQ"},
	{"QQ_", "QQ"}, {"YUANBAO_", "Yuanbao"}, {"GOOGLE_CHAT_", "Google Chat"},
	{"MSGRAPH_WEBHOOK_", "Microsoft Graph webhook"},
}

const (
	whyHome        = "Hermes' cron deliveries stay in Hermes"
	whyUserOnly    = "herald allows by user id only (allowed_users, in direct messages and groups alike): no chat, channel, topic or role lists"
	whyMentionList = "herald has one mention rule per platform: no per-channel or pattern rules"
	whyPerChannel  = "herald sends every turn to the one agent: no per-channel model or prompt"
	whyNoEquiv     = "no herald equivalent"
	whyOneProfile  = "herald serves one Hermes profile per configuration: run `herald migrate hermes --profile NAME` for each"
	whyNoReset     = "herald has no automatic session reset"
	whyWebhookMode = "herald's Feishu adapter uses the long connection only; these serve Hermes' webhook mode"
)

// envDefault classifies a .env name before mapping: gw is false for names
// that are not gateway settings (model providers, tools), which stay in
// Hermes. Mapped names are overwritten by the mapping.
func envDefault(name string) (status, note string, gw bool) {
	for _, o := range otherPlatformEnv {
		if strings.HasPrefix(name, o.prefix) {
			return StaysHermes, staysNote(o.name), true
		}
	}
	switch name {
	case "WEBHOOK_ENABLED", "WEBHOOK_PORT", "WEBHOOK_SECRET":
		return StaysHermes, "Hermes' webhook platform (event routes that prompt the agent) is not herald's chat webhook: configure platforms.webhook by hand if you want one", true
	case "API_SERVER_CORS_ORIGINS":
		return NotNeeded, "browser access only; herald calls the API server directly", true
	case "GATEWAY_MULTIPLEX_PROFILES":
		return Unsupported, whyOneProfile, true
	case "HERMES_GATEWAY_BUSY_ACK_ENABLED":
		return Unsupported, "herald sends no busy acknowledgement", true
	case "SESSION_IDLE_MINUTES", "SESSION_RESET_HOUR":
		return Unsupported, whyNoReset, true
	case "FEISHU_ENCRYPT_KEY", "FEISHU_VERIFICATION_TOKEN":
		return NotNeeded, whyWebhookMode, true
	case "TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_PORT", "TELEGRAM_WEBHOOK_SECRET":
		return Unsupported, "herald polls with getUpdates: no webhook mode", true
	case "DISCORD_COMMAND_SYNC_POLICY":
		return NotNeeded, "herald registers no slash commands", true
	case "SLACK_THREAD_REQUIRE_MENTION", "DISCORD_AUTO_THREAD":
		return Unsupported, whyMentionList, true
	}
	if strings.HasPrefix(name, "API_SERVER_") || strings.HasPrefix(name, "GATEWAY_") || strings.HasPrefix(name, "HERMES_GATEWAY_") {
		return Unsupported, whyNoEquiv, true
	}
	for _, prefix := range heraldPlatforms {
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		return platformKeyDefault(strings.ToLower(strings.TrimPrefix(name, prefix)))
	}
	return "", "", false
}

// platformKeyDefault classifies a platform setting by its name (a
// config.yaml key, or an .env name without its platform prefix, lower
// case).
func platformKeyDefault(key string) (status, note string, gw bool) {
	switch {
	case strings.Contains(key, "home_channel"), strings.Contains(key, "cron_thread"), key == "home_address":
		return Unsupported, whyHome, true
	case strings.Contains(key, "allowed_chats"), strings.Contains(key, "allowed_channels"),
		strings.Contains(key, "allowed_roles"), strings.Contains(key, "allowed_topics"),
		strings.Contains(key, "group_allowed_users"), key == "group_allow_from",
		key == "dm_policy", key == "group_policy", strings.Contains(key, "allow_admin_from"):
		return Unsupported, whyUserOnly, true
	case strings.Contains(key, "free_response"), strings.Contains(key, "mention_patterns"),
		strings.Contains(key, "ignored_"), strings.Contains(key, "no_thread"),
		strings.Contains(key, "exclusive_bot_mentions"), strings.Contains(key, "bots_require_mention"),
		strings.Contains(key, "native_mention_only"), key == "observe_unmentioned_group_messages":
		return Unsupported, whyMentionList, true
	case key == "channel_overrides", key == "channel_prompts", key == "channel_skill_bindings":
		return Unsupported, whyPerChannel, true
	case key == "home_channel":
		return Unsupported, whyHome, true
	case key == "reply_to_mode":
		return Unsupported, "herald has no reply-reference setting", true
	case key == "reactions":
		return Unsupported, "herald adds no processing reactions", true
	case key == "proxy":
		return Unsupported, "herald has no per-platform proxy setting", true
	case key == "allow_bots":
		return Unsupported, "herald has no setting for messages from other bots", true
	case key == "gateway_restart_notification":
		return NotNeeded, "herald restarts without notices in chats (nothing is lost across a restart)", true
	case key == "typing_indicator", key == "typing_status_text":
		return Unsupported, "herald has no typing-indicator setting", true
	case key == "encrypt_key", key == "verification_token":
		return NotNeeded, whyWebhookMode, true
	}
	return Unsupported, whyNoEquiv, true
}

// globalDefault classifies a gateway-wide config.yaml key (top level or
// under gateway:). ok is false for keys that are not gateway settings.
func globalDefault(key string) (status, note string, ok bool) {
	switch key {
	case "session_reset", "reset_by_type", "reset_by_platform", "reset_triggers", "default_reset_policy":
		return Unsupported, whyNoReset, true
	case "quick_commands":
		return Unsupported, "herald has no quick commands", true
	case "stt", "stt_enabled", "stt_echo_transcripts":
		return Unsupported, "herald passes text only: no voice transcription", true
	case "thread_sessions_per_user":
		return Unsupported, "herald keys thread sessions like chats: no separate thread setting", true
	case "multiplex_profiles", "multiplex_profile_allowlist", "profile_routes":
		return Unsupported, whyOneProfile, true
	case "always_log_local":
		return StaysHermes, "cron output; cron jobs stay in Hermes", true
	case "write_sessions_json", "session_store_max_age_days", "sessions_dir":
		return NotNeeded, "herald keeps its own message store (store.retention)", true
	case "filter_silence_narration":
		return Unsupported, whyNoEquiv, true
	case "systemd_watchdog_seconds", "loop_watchdog":
		return NotNeeded, "herald always runs under the systemd watchdog (WatchdogSec=, watchdog.check_timeout)", true
	case "platform_connect_timeout":
		return NotNeeded, "herald bounds every platform call (each platform's request_timeout)", true
	case "restart_drain_timeout":
		return NotNeeded, "herald's shutdown.drain_timeout (default 20s) bounds a stop; unfinished turns stay pending for the next start", true
	case "group_sessions_per_user", "max_concurrent_sessions", "unauthorized_dm_behavior", "streaming", "require_mention", "proxy_url":
		return Unsupported, whyNoEquiv, true
	}
	return "", "", false
}
