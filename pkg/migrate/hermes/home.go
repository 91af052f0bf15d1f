// SPDX-License-Identifier: Apache-2.0

package hermes

import (
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Hermes' home channel of a platform is where its cron jobs and notices go
// when they name no chat: <P>_HOME_CHANNEL in .env (the chat id, which wins)
// with <P>_HOME_CHANNEL_NAME (a display name) and
// <P>_HOME_CHANNEL_THREAD_ID (a thread or topic in that chat), or
// home_channel: {platform, chat_id, name, thread_id} in the platform's
// config.yaml block, which Hermes' /sethome writes. herald's home_chat is
// the same thing for its send API: the chat a message goes to when it names
// none. It names a chat only.

const (
	whyHomeThread = "herald's home_chat names a chat, not a thread or topic in it: pass thread_id with each message of the send API"
	whyHomeName   = "a display name in Hermes; herald's home_chat is the chat id alone"
)

// homeChatID reports whether id is a chat id herald's adapter for p sends
// to as Hermes does: Telegram's numeric chat id (or @channel username),
// Discord's channel id, Slack's conversation id, Feishu's chat id (oc_…).
func homeChatID(p, id string) bool {
	switch p {
	case "telegram":
		if _, err := strconv.ParseInt(id, 10, 64); err == nil {
			return true
		}
		return strings.HasPrefix(id, "@") && len(id) > 1
	case "discord":
		_, err := strconv.ParseUint(id, 10, 64)
		return err == nil
	case "slack":
		return slackConversation.MatchString(id)
	case "feishu":
		return strings.HasPrefix(id, "oc_") && len(id) > 3
	}
	return false
}

var slackConversation = regexp.MustCompile(`^[CDG][A-Z0-9]{2,}$`)

// mapHome maps platform p's home channel to home_chat.
func (b *builder) mapHome(p, prefix string, add func(string, *yaml.Node, string)) {
	env := prefix + "HOME_CHANNEL"
	if _, ok := b.src.Getenv(env + "_NAME"); ok {
		b.set(env+"_NAME", NotNeeded, "", whyHomeName)
	}
	if _, ok := b.src.Getenv(env + "_THREAD_ID"); ok {
		b.set(env+"_THREAD_ID", Unsupported, "", whyHomeThread)
	}
	id, from, thread := "", "", false
	if v, ok := b.src.Getenv(env); ok {
		id, from = strings.TrimSpace(v), env
		b.overriddenP(p, "home_channel", env)
	} else if v, path, ok := b.pget(p, "home_channel"); ok {
		from = path
		m := asMap(v)
		id = scalar(m["chat_id"])
		thread = scalar(m["thread_id"]) != ""
	}
	switch {
	case from == "":
		return
	case id == "":
		b.set(from, Unsupported, "", "no chat_id in it")
		return
	case !homeChatID(p, id):
		b.set(from, Unsupported, "", "not a "+p+" chat id herald sends to; set platforms."+p+".home_chat by hand")
		return
	}
	add("home_chat", str(id), "Hermes' home channel: where herald send delivers a message that names no chat.")
	note := "the chat a message of herald's send API goes to when it names none; Hermes' cron jobs stay in Hermes"
	if thread {
		note += "; its thread_id is not carried over (" + whyHomeThread + ")"
	}
	b.set(from, Mapped, "platforms."+p+".home_chat", note)
}
