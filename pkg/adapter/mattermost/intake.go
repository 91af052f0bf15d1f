// SPDX-License-Identifier: Apache-2.0

package mattermost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/message"
)

// readLimit bounds one websocket frame.
const readLimit = 1 << 20

// catchupOverlap is fetched again before the cursor at every catch-up, so
// that a post created in the same millisecond as the cursor's, or stored
// out of order across channels, is not skipped; the store drops what was
// already stored.
const catchupOverlap = 2 * time.Second

// sinceLimit is the most posts the server returns for one
// GET /channels/{id}/posts?since= (LIMIT 1000 in its query).
const sinceLimit = 1000

// wsEvent is one frame of the event websocket: an event, or the response
// to an action (seq_reply).
type wsEvent struct {
	Event    string          `json:"event"`
	Data     json.RawMessage `json:"data"`
	Seq      int64           `json:"seq"`
	Status   string          `json:"status"`
	SeqReply int64           `json:"seq_reply"`
	Error    *apiError       `json:"error"`
}

// postedData is the data of a posted event; post is a JSON string.
type postedData struct {
	Post        string `json:"post"`
	ChannelType string `json:"channel_type"`
	SenderName  string `json:"sender_name"`
}

// run holds the connection until soft ends or credentials are rejected.
func (a *Adapter) run(soft context.Context, inbox adapter.Inbox) {
	adapter.Reconnect{Life: a.life, Log: a.log, Metrics: a.metrics,
		Backoff: a.backoff}.
		Run(soft, func(ctx context.Context) adapter.Attempt { return a.connect(ctx, inbox) })
}

// connect makes one connection: the bot user, the websocket and its
// authentication, the catch-up, then events until the connection ends.
func (a *Adapter) connect(ctx context.Context, inbox adapter.Inbox) adapter.Attempt {
	me, err := a.api.me(ctx)
	if err != nil {
		return attemptFor(fmt.Errorf("mattermost: %w", err))
	}
	a.mu.Lock()
	a.me = me
	a.mu.Unlock()
	ws, err := a.dial(ctx)
	if err != nil {
		return attemptFor(err)
	}
	defer ws.CloseNow()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The websocket is open before the catch-up, so that nothing posted
	// in between is missed; its events wait in frames (and then in the
	// socket's buffers) until the catch-up is done. Pings start after it:
	// a reader held up by a long catch-up does not answer them.
	frames := make(chan []byte, 64)
	readErr := make(chan error, 1)
	a.life.Go(func() { readErr <- a.read(cctx, ws, frames) })
	if err := a.catchUp(cctx, inbox, me); err != nil {
		return attemptFor(fmt.Errorf("mattermost: catch-up: %w", err))
	}
	a.life.Go(func() { a.ping(cctx, ws, cancel) })
	a.life.Report(adapter.Status{Phase: adapter.PhaseConnected})
	a.log.WithField("bot", me.Username).Info("mattermost: connected")
	for {
		select {
		case b := <-frames:
			if err := a.handle(cctx, inbox, me, b); err != nil {
				return adapter.Attempt{Err: err, Healthy: true}
			}
		case err := <-readErr:
			return adapter.Attempt{Err: fmt.Errorf("mattermost: websocket: %w", err), Healthy: true}
		case <-cctx.Done():
			return adapter.Attempt{Err: fmt.Errorf("mattermost: websocket: %w", context.Cause(cctx)), Healthy: true}
		}
	}
}

// attemptFor turns a failed connection into an Attempt: a rate limit
// waits what the server asked for.
func attemptFor(err error) adapter.Attempt {
	at := adapter.Attempt{Err: err}
	if d, ok := adapter.RetryAfter(err); ok {
		at.Delay = d
	}
	return at
}

// dial opens the event websocket and authenticates on it with an
// authentication_challenge, within request_timeout.
func (a *Adapter) dial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
	defer cancel()
	u := "ws" + strings.TrimPrefix(a.conf.baseURL(), "http") + "/api/v4/websocket"
	ws, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPClient: a.api.http})
	if err != nil {
		if resp != nil && resp.StatusCode == http.StatusUnauthorized {
			return nil, fmt.Errorf("mattermost: websocket: %w: HTTP 401", adapter.ErrUnauthorized)
		}
		return nil, fmt.Errorf("mattermost: websocket: %w: %w", adapter.ErrTemporary, err)
	}
	ws.SetReadLimit(readLimit)
	auth, _ := json.Marshal(map[string]any{"seq": 1, "action": "authentication_challenge",
		"data": map[string]string{"token": a.api.token.Reveal()}})
	if err := ws.Write(dctx, websocket.MessageText, auth); err != nil {
		ws.CloseNow()
		return nil, fmt.Errorf("mattermost: websocket: authentication: %w: %w", adapter.ErrTemporary, err)
	}
	for {
		_, b, err := ws.Read(dctx)
		if err != nil {
			ws.CloseNow()
			if websocket.CloseStatus(err) == websocket.StatusPolicyViolation {
				return nil, fmt.Errorf("mattermost: websocket: %w: authentication refused: %w", adapter.ErrUnauthorized, err)
			}
			return nil, fmt.Errorf("mattermost: websocket: authentication: %w: %w", adapter.ErrTemporary, err)
		}
		var ev wsEvent
		if json.Unmarshal(b, &ev) != nil || ev.SeqReply != 1 {
			continue // hello, or an event before the answer
		}
		if ev.Status != "OK" {
			ws.CloseNow()
			desc := ev.Status
			if ev.Error != nil {
				desc += " " + ev.Error.ID
			}
			return nil, fmt.Errorf("mattermost: websocket: %w: authentication_challenge answered %s", adapter.ErrUnauthorized, desc)
		}
		return ws, nil
	}
}

// read passes every text frame to frames until the connection ends.
func (a *Adapter) read(ctx context.Context, ws *websocket.Conn, frames chan<- []byte) error {
	for {
		typ, b, err := ws.Read(ctx)
		if err != nil {
			return err
		}
		if typ != websocket.MessageText {
			continue
		}
		select {
		case frames <- b:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// ping pings the websocket every ping_interval; a ping unanswered within
// request_timeout (a blackholed connection) ends the connection.
func (a *Adapter) ping(ctx context.Context, ws *websocket.Conn, cancel context.CancelFunc) {
	t := time.NewTicker(a.conf.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, pcancel := context.WithTimeout(ctx, a.conf.RequestTimeout)
		err := ws.Ping(pctx)
		pcancel()
		if err != nil {
			if ctx.Err() == nil {
				a.log.WithError(err).Warn("mattermost: websocket ping unanswered; reconnecting")
			}
			cancel()
			return
		}
	}
}

// handle processes one websocket frame. An error ends the connection: the
// post was not stored, and the catch-up of the next connection fetches it.
func (a *Adapter) handle(ctx context.Context, inbox adapter.Inbox, me *user, b []byte) error {
	var ev wsEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		a.metrics.Rejected("malformed")
		a.log.WithError(err).Warn("mattermost: skipping a malformed websocket frame")
		return nil
	}
	if ev.Event != "posted" {
		return nil
	}
	var d postedData
	var p post
	if err := json.Unmarshal(ev.Data, &d); err != nil || json.Unmarshal([]byte(d.Post), &p) != nil || p.ID == "" || p.ChannelID == "" {
		a.metrics.Rejected("malformed")
		a.log.WithField("seq", ev.Seq).Warn("mattermost: skipping a posted event without a readable post")
		return nil
	}
	return a.take(ctx, inbox, me, &p, d.ChannelType)
}

// catchUp delivers what was posted since the cursor in every channel the
// bot is a member of, oldest first. On the very first connection (no
// cursor) it only sets the cursor to now, the earlier of herald's clock
// and the server's (create_at is the server's): herald does not answer
// history, and a server clock behind herald's loses no post.
func (a *Adapter) catchUp(ctx context.Context, inbox adapter.Inbox, me *user) error {
	last := a.lastPostAt()
	if last == 0 {
		start := a.now()
		if st := a.api.serverTime(); !st.IsZero() && st.Before(start) {
			start = st
		}
		a.advance(start.UnixMilli())
		return nil
	}
	since := last - catchupOverlap.Milliseconds()
	chs, err := a.api.channels(ctx)
	if err != nil {
		return err
	}
	types := make(map[string]string, len(chs))
	var posts []*post
	for _, ch := range chs {
		types[ch.ID] = ch.Type
		ps, err := a.api.postsSince(ctx, ch.ID, since)
		if errors.Is(err, adapter.ErrPermanent) {
			// Left or lost access since the list was made: nothing
			// there is for the bot now; the other channels still are.
			a.log.WithError(err).WithField("channel_id", ch.ID).Warn("mattermost: catch-up: skipping a channel the bot cannot read")
			continue
		}
		if err != nil {
			return err
		}
		if len(ps) >= sinceLimit {
			a.log.WithFields(map[string]any{"channel_id": ch.ID, "posts": len(ps)}).
				Warn("mattermost: catch-up: the server's limit of posts per answer was reached; older posts made while disconnected may be missed")
		}
		for _, p := range ps {
			// since also returns posts edited or deleted after it.
			if p.CreateAt > since && p.DeleteAt == 0 {
				if p.ChannelID == "" {
					p.ChannelID = ch.ID
				}
				posts = append(posts, p)
			}
		}
	}
	sort.SliceStable(posts, func(i, j int) bool {
		if posts[i].CreateAt != posts[j].CreateAt {
			return posts[i].CreateAt < posts[j].CreateAt
		}
		return posts[i].ID < posts[j].ID
	})
	if len(posts) > 0 {
		a.log.WithField("posts", len(posts)).Info("mattermost: catching up on posts made while disconnected")
	}
	for _, p := range posts {
		if err := a.take(ctx, inbox, me, p, types[p.ChannelID]); err != nil {
			return err
		}
	}
	return nil
}

// take turns one post into a message, stores it and moves the cursor past
// it. What is skipped moves the cursor too; what the store refuses for
// now does not, and ends the connection.
func (a *Adapter) take(ctx context.Context, inbox adapter.Inbox, me *user, p *post, channelType string) error {
	msg, reason := a.inbound(p, channelType, me)
	if msg == nil {
		if reason != "" {
			a.metrics.Rejected(reason)
			a.log.WithFields(map[string]any{"post_id": p.ID, "reason": reason}).Debug("mattermost: post skipped")
		}
		a.advance(p.CreateAt)
		return nil
	}
	err := inbox.Deliver(ctx, msg)
	switch {
	case err == nil:
	case errors.Is(err, message.ErrInvalid):
		a.metrics.Rejected("invalid")
		a.log.WithError(err).WithField("post_id", p.ID).Warn("mattermost: the store refused a post as invalid; skipping it")
	default:
		return fmt.Errorf("mattermost: deliver %s: %w", p.ID, err)
	}
	a.advance(p.CreateAt)
	return nil
}

// inbound builds the message of post p, or nil and the reason it is
// skipped ("" for posts that are not for herald at all: the bot's own, system
// messages). The post's files become attachments (the message is the
// caption; a post with only files is a message too), with their file ids
// as references, stored with the message before the cursor moves.
func (a *Adapter) inbound(p *post, channelType string, me *user) (*message.Inbound, string) {
	switch {
	case p.UserID == me.ID, p.Type != "" && !strings.HasPrefix(p.Type, customPostPrefix):
		return nil, ""
	case p.DeleteAt != 0:
		return nil, ""
	case p.Props["from_bot"] == "true" || p.Props["from_webhook"] == "true":
		return nil, "from_bot"
	case p.UserID == "":
		return nil, "malformed"
	case !utf8.ValidString(p.Message):
		return nil, "malformed"
	case len(p.Message) > message.MaxTextBytes:
		return nil, "too_large"
	}
	atts, unsupported := attachments(p)
	if strings.TrimSpace(p.Message) == "" && len(atts) == 0 && len(unsupported) == 0 {
		return nil, "no_text"
	}
	ct := message.ChatChannel
	switch channelType {
	case "D":
		ct = message.ChatDirect
	case "G":
		ct = message.ChatGroup
	}
	if ct == message.ChatChannel && a.conf.MentionOnly && !mentions(p.Message, me.Username) {
		return nil, "not_mentioned"
	}
	return &message.Inbound{
		Platform:    a.name,
		EventID:     p.ID,
		ChatID:      p.ChannelID,
		ChatType:    ct,
		ThreadID:    p.RootID,
		SenderID:    p.UserID,
		MessageID:   p.ID,
		Text:        p.Message,
		Attachments: atts,
		Unsupported: unsupported,
		ReceivedAt:  a.now(),
	}, ""
}

// mentions reports whether text mentions @username: the name, in any
// letter case, not followed by a character that can continue a username
// (letters, digits, '.', '_', '-'; a trailing '.' ends a sentence).
func mentions(text, username string) bool {
	if username == "" {
		return false
	}
	lt, lu := strings.ToLower(text), "@"+strings.ToLower(username)
	for i := 0; ; {
		j := strings.Index(lt[i:], lu)
		if j < 0 {
			return false
		}
		end := i + j + len(lu)
		rest := lt[end:]
		if rest == "" || !usernameChar(rest[0]) || (rest[0] == '.' && (len(rest) == 1 || !usernameChar(rest[1]) || rest[1] == '.')) {
			return true
		}
		i = end
	}
}

func usernameChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
}
