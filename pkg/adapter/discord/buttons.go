// SPDX-License-Identifier: Apache-2.0

package discord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/message"
)

// Buttons are message components: the message is created with
// components, one action row (type 1) of buttons (type 2) with a label, a
// style and a custom_id of at most 100 characters (the button's data). A
// press arrives over the gateway as INTERACTION_CREATE of type 3
// (MESSAGE_COMPONENT) with data.custom_id, the presser (member.user in a
// guild, user in a DM), the channel and the message; Discord wants an
// answer within 3 seconds, POST /interactions/{id}/{token}/callback, and
// herald answers type 6 (DEFERRED_UPDATE_MESSAGE: acknowledged, the
// message stays as it is, no loading state).

const (
	componentActionRow = 1
	componentButton    = 2

	buttonPrimary   = 1
	buttonSecondary = 2
	buttonDanger    = 4

	interactionComponent = 3
	callbackDeferUpdate  = 6

	// maxCallbackWait bounds the interaction callback: Discord refuses
	// an answer later than 3 s after the interaction anyway.
	maxCallbackWait = 3 * time.Second
)

type component struct {
	Type       int         `json:"type"`
	Components []component `json:"components,omitempty"`
	Style      int         `json:"style,omitempty"`
	Label      string      `json:"label,omitempty"`
	CustomID   string      `json:"custom_id,omitempty"`
}

// components returns one action row of buttons, nil for none.
func components(buttons []message.Button) []component {
	if len(buttons) == 0 {
		return nil
	}
	row := component{Type: componentActionRow}
	for _, b := range buttons {
		style := buttonSecondary
		switch b.Style {
		case "primary":
			style = buttonPrimary
		case "danger":
			style = buttonDanger
		}
		row.Components = append(row.Components, component{Type: componentButton, Style: style, Label: b.Label, CustomID: b.Data})
	}
	return []component{row}
}

// SendsButtons implements adapter.ButtonSender.
func (a *Adapter) SendsButtons() bool { return true }

// interactionData is the part of an INTERACTION_CREATE herald reads.
type interactionData struct {
	ID        string `json:"id"`
	Type      int    `json:"type"`
	Token     string `json:"token"`
	GuildID   string `json:"guild_id"`
	ChannelID string `json:"channel_id"`
	Channel   *struct {
		ID   string `json:"id"`
		Type int    `json:"type"`
	} `json:"channel"`
	Member *struct {
		User user `json:"user"`
	} `json:"member"`
	User    *user `json:"user"`
	Message *struct {
		ID string `json:"id"`
	} `json:"message"`
	Data struct {
		CustomID      string `json:"custom_id"`
		ComponentType int    `json:"component_type"`
	} `json:"data"`
}

// Channel types of threads: announcement, public and private thread.
func isThreadType(t int) bool { return t == 10 || t == 11 || t == 12 }

// pressed maps a component interaction to the press of a button: a message
// from the presser in the interaction's channel, keyed by the interaction.
func (in *intake) pressed(i *interactionData, now time.Time) (*message.Inbound, string) {
	if i.Type != interactionComponent || i.Data.ComponentType != componentButton {
		return nil, fmt.Sprintf("interaction of type %d (component %d)", i.Type, i.Data.ComponentType)
	}
	var u user
	switch {
	case i.Member != nil:
		u = i.Member.User
	case i.User != nil:
		u = *i.User
	}
	if u.Bot {
		return nil, skipBot
	}
	msg := &message.Inbound{
		Platform:   in.platform,
		EventID:    "interaction:" + i.ID,
		ChatID:     i.ChannelID,
		ChatType:   message.ChatDirect,
		SenderID:   u.ID,
		SenderName: u.GlobalName,
		Button:     i.Data.CustomID,
		ReceivedAt: now,
	}
	if i.ID == "" {
		msg.EventID = ""
	}
	if msg.SenderName == "" {
		msg.SenderName = u.Username
	}
	if i.Message != nil {
		msg.MessageID = i.Message.ID
	}
	if i.GuildID != "" {
		msg.ChatType = message.ChatGroup
		if (i.Channel != nil && isThreadType(i.Channel.Type)) || (in.isThread != nil && in.isThread(i.ChannelID)) {
			msg.ThreadID = i.ChannelID
		}
	}
	return msg, ""
}

// interaction hands one INTERACTION_CREATE to the inbox and answers it. It
// returns an error only when the press was not stored and must be
// replayed; it is then not answered.
func (a *Adapter) interaction(ctx context.Context, p payload) error {
	var i interactionData
	if err := json.Unmarshal(p.D, &i); err != nil {
		a.Metrics.Rejected("malformed")
		a.Log.WithError(err).WithField("seq", p.S).Warn("discord: dropping malformed interaction")
		return nil
	}
	in := &intake{platform: a.Name, botID: a.botID, isThread: a.isThread}
	msg, skip := in.pressed(&i, time.Now())
	if msg == nil {
		// Not a button press: another part of the application may answer
		// it (a slash command handled elsewhere); herald does not.
		a.Log.WithFields(map[string]any{"interaction": i.ID, "reason": skip}).Debug("discord: interaction skipped")
		return nil
	}
	log := a.Log.WithField("interaction", i.ID)
	if err := msg.Validate(); err != nil {
		a.Metrics.Rejected("malformed")
		log.WithError(err).Warn("discord: dropping an invalid button press")
	} else if err := a.inbox.Deliver(ctx, msg); err != nil {
		if !errors.Is(err, message.ErrInvalid) {
			return fmt.Errorf("discord: inbox: interaction %s (seq %d) not stored, resuming from seq %d to have it replayed: %w", i.ID, p.S, a.seq.Load(), err)
		}
		a.Metrics.Rejected("malformed")
		log.WithError(err).Warn("discord: inbox refused a button press for good")
	}
	a.answerInteraction(ctx, &i, log)
	return nil
}

// answerInteraction acknowledges a button press with a deferred update, so
// the user's client does not say the interaction failed. It is sent for
// every press herald is done with (stored, a duplicate, refused). A
// failure (Discord answers 404 for an interaction older than 3 s) is
// logged only: the press is stored regardless.
func (a *Adapter) answerInteraction(ctx context.Context, i *interactionData, log *logrus.Entry) {
	if i.ID == "" || i.Token == "" {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, maxCallbackWait)
	defer cancel()
	err := a.rest.do(ctx, request{
		op: "interaction callback", method: http.MethodPost, route: routeInteractionCallback,
		path: "/interactions/" + url.PathEscape(i.ID) + "/" + url.PathEscape(i.Token) + "/callback",
		body: struct {
			Type int `json:"type"`
		}{callbackDeferUpdate},
		timeout: maxCallbackWait, idempotent: true,
	}, nil)
	if err != nil {
		log.WithError(err).Info("discord: button press not acknowledged; the user's client may say the interaction failed")
		return
	}
	log.Debug("discord: button press acknowledged")
}
