// SPDX-License-Identifier: Apache-2.0

package feishu

import (
	"container/list"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/adapter/feishu/internal/pbbp2"
	"github.com/heraldgw/herald/pkg/message"
)

const eventMessageReceive = "im.message.receive_v1"

// Reasons passed to Metrics.Rejected for events acknowledged without being
// stored. The labels match the other adapters where the meaning is shared.
const (
	reasonMalformed    = "malformed"     // undecodable frame or payload
	reasonEncrypted    = "encrypted"     // an Encrypt Key is set on the app
	reasonUnsupported  = "unsupported"   // an event type other than im.message.receive_v1
	reasonFromBot      = "from_bot"      // sender_type is not "user"
	reasonNotAddressed = "not_addressed" // group message without a mention of the bot
	reasonTooLarge     = "too_large"     // text above message.MaxTextBytes
	reasonInvalid      = "invalid"       // refused by the store as message.ErrInvalid
	reasonIncomplete   = "incomplete"    // fragments missing after fragment_ttl, or crowded out (not acked)
)

// envelope is a v2 event (schema 2.0).
type envelope struct {
	Schema  string          `json:"schema"`
	Encrypt json.RawMessage `json:"encrypt"`
	Header  struct {
		EventID   string `json:"event_id"`
		EventType string `json:"event_type"`
		AppID     string `json:"app_id"`
		TenantKey string `json:"tenant_key"`
	} `json:"header"`
	Event json.RawMessage `json:"event"`
}

type userID struct {
	OpenID  string `json:"open_id"`
	UnionID string `json:"union_id"`
	UserID  string `json:"user_id"`
}

type mention struct {
	Key  string `json:"key"`
	ID   userID `json:"id"`
	Name string `json:"name"`
}

// messageReceive is the event of im.message.receive_v1 (SDK
// service/im/v1/model.go).
type messageReceive struct {
	Sender struct {
		SenderID   userID `json:"sender_id"`
		SenderType string `json:"sender_type"`
	} `json:"sender"`
	Message struct {
		MessageID   string    `json:"message_id"`
		RootID      string    `json:"root_id"`
		ParentID    string    `json:"parent_id"`
		ChatID      string    `json:"chat_id"`
		ThreadID    string    `json:"thread_id"`
		ChatType    string    `json:"chat_type"`
		MessageType string    `json:"message_type"`
		Content     string    `json:"content"`
		Mentions    []mention `json:"mentions"`
	} `json:"message"`
}

// process turns a complete event payload into a stored message. It returns
// whether the event may be acknowledged: true once it is stored or when it
// can never be processed (it would otherwise be redelivered forever), false
// when the store failed and the platform must redeliver. resp, when not
// nil, is the payload to acknowledge with (a card callback's answer).
func (a *Adapter) process(ctx context.Context, inbox adapter.Inbox, payload []byte, traceID string) (ack bool, resp []byte) {
	ack, card := a.processEvent(ctx, inbox, payload, traceID)
	if card {
		return ack, cardAck
	}
	return ack, nil
}

// processEvent is process; card reports a card callback.
func (a *Adapter) processEvent(ctx context.Context, inbox adapter.Inbox, payload []byte, traceID string) (ack, card bool) {
	log := a.Log.WithField("trace_id", traceID)
	var env envelope
	if err := json.Unmarshal(payload, &env); err != nil {
		log.WithError(err).Warn("feishu: acknowledging an event that is not JSON")
		a.Metrics.Rejected(reasonMalformed)
		return true, card
	}
	if env.Encrypt != nil {
		log.Error("feishu: acknowledging an encrypted event: the long connection delivers plaintext; remove the app's Encrypt Key")
		a.Metrics.Rejected(reasonEncrypted)
		return true, card
	}
	log = log.WithFields(map[string]any{"event_id": env.Header.EventID, "event_type": env.Header.EventType})
	if env.Header.EventID == "" {
		log.Warn("feishu: acknowledging an event without header.event_id (not a v2 event)")
		a.Metrics.Rejected(reasonMalformed)
		return true, card
	}
	var msg *message.Inbound
	var reason string
	switch env.Header.EventType {
	case eventMessageReceive:
		var ev messageReceive
		if err := json.Unmarshal(env.Event, &ev); err != nil {
			log.WithError(err).Warn("feishu: acknowledging a malformed message event")
			a.Metrics.Rejected(reasonMalformed)
			return true, card
		}
		msg, reason = a.inbound(ctx, env.Header.EventID, &ev)
	case eventCardAction:
		card = true
		var err error
		if msg, reason, err = a.pressed(env.Header.EventID, env.Event); err != nil {
			log.WithError(err).Warn("feishu: answering a malformed card callback")
		}
	default:
		log.Debug("feishu: acknowledging an event type herald does not handle")
		a.Metrics.Rejected(reasonUnsupported)
		return true, card
	}
	if reason != "" {
		log.WithField("reason", reason).Debug("feishu: acknowledging a message herald does not take")
		a.Metrics.Rejected(reason)
		return true, card
	}
	if err := msg.Validate(); err != nil {
		reason := reasonMalformed
		if len(msg.Text) > message.MaxTextBytes {
			reason = reasonTooLarge
		}
		log.WithError(err).Warn("feishu: acknowledging a message that cannot be stored")
		a.Metrics.Rejected(reason)
		return true, card
	}
	dctx, cancel := context.WithTimeout(ctx, a.timing.deliverTimeout)
	err := inbox.Deliver(dctx, msg)
	cancel()
	switch {
	case err == nil:
		return true, card
	case errors.Is(err, message.ErrInvalid):
		log.WithError(err).Warn("feishu: acknowledging a message the store refused as invalid")
		a.Metrics.Rejected(reasonInvalid)
		return true, card
	case errors.Is(err, adapter.ErrStopping), ctx.Err() != nil:
		log.WithError(err).Info("feishu: not acknowledging (stopping); the platform will redeliver")
		return false, card
	default:
		log.WithError(err).Warn("feishu: message not stored, not acknowledged; the platform will redeliver it")
		return false, card
	}
}

// inbound maps a message event to message.Inbound, or returns the reason
// (a Rejected label) why herald does not take it.
func (a *Adapter) inbound(ctx context.Context, eventID string, ev *messageReceive) (*message.Inbound, string) {
	if ev.Sender.SenderType != "user" {
		// Bots (including herald itself) and system senders: never answer,
		// so that two bots cannot loop.
		return nil, reasonFromBot
	}
	m := &ev.Message
	var chatType message.ChatType
	switch m.ChatType {
	case "p2p":
		chatType = message.ChatDirect
	case "":
		return nil, reasonMalformed
	default: // "group" and any group-like type the platform adds
		chatType = message.ChatGroup
	}
	text, err := messageText(m.MessageType, m.Content)
	if err != nil {
		a.Log.WithError(err).WithField("message_type", m.MessageType).Warn("feishu: undecodable message content")
		return nil, reasonMalformed
	}
	atts, unsupported, err := messageMedia(m.MessageID, m.MessageType, m.Content)
	if err != nil {
		a.Log.WithError(err).WithField("message_type", m.MessageType).Warn("feishu: undecodable message content")
		return nil, reasonMalformed
	}
	botID := ""
	if len(m.Mentions) > 0 {
		botID = a.botOpenID(ctx)
	}
	if chatType == message.ChatGroup && a.conf.RequireMention && !mentionsBot(m.Mentions, botID) {
		return nil, reasonNotAddressed
	}
	sender := ev.Sender.SenderID.OpenID
	if sender == "" {
		sender = ev.Sender.SenderID.UnionID
	}
	in := &message.Inbound{
		Platform:   a.Name,
		EventID:    eventID,
		ChatID:     m.ChatID,
		ChatType:   chatType,
		ThreadID:   m.ThreadID,
		SenderID:   sender,
		MessageID:  m.MessageID,
		Text:       stripMentions(text, m.Mentions, botID),
		ReceivedAt: time.Now(),
	}
	in.Attachments = atts
	if unsupported != "" {
		in.Unsupported = []string{unsupported}
	}
	return in, ""
}

// mentionsBot reports whether mentions name the bot. Without the bot's
// open_id (bot info unavailable) any mention counts: with the default
// permission (im:message.group_at_msg) the platform only pushes group
// messages that mention the bot anyway.
func mentionsBot(mentions []mention, botID string) bool {
	if botID == "" {
		return len(mentions) > 0
	}
	for _, m := range mentions {
		if m.ID.OpenID == botID {
			return true
		}
	}
	return false
}

// stripMentions replaces the @_user_N placeholders of text: the bot's own
// mention is removed, other users become @Name.
func stripMentions(text string, mentions []mention, botID string) string {
	if len(mentions) == 0 {
		return text
	}
	ms := append([]mention(nil), mentions...)
	// Longest key first, so that @_user_1 does not eat into @_user_10.
	sort.Slice(ms, func(i, j int) bool { return len(ms[i].Key) > len(ms[j].Key) })
	for _, m := range ms {
		if m.Key == "" {
			continue
		}
		if botID != "" && m.ID.OpenID == botID {
			text = strings.ReplaceAll(text, m.Key+" ", "")
			text = strings.ReplaceAll(text, m.Key, "")
			continue
		}
		name := m.Name
		if name == "" {
			name = m.ID.OpenID
		}
		text = strings.ReplaceAll(text, m.Key, "@"+name)
	}
	return strings.TrimSpace(text)
}

// messageText extracts the text of a message. Text and rich text (post)
// are read; other types have no text (their media are decoded by
// messageMedia).
func messageText(msgType, content string) (string, error) {
	switch msgType {
	case "text":
		var c struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal([]byte(content), &c); err != nil {
			return "", fmt.Errorf("text content: %w", err)
		}
		return c.Text, nil
	case "post":
		return postText(content)
	case "":
		return "", errors.New("no message_type")
	default:
		// Media and unsupported kinds carry no text: see messageMedia.
		return "", nil
	}
}

type postElement struct {
	Tag       string `json:"tag"`
	Text      string `json:"text"`
	Href      string `json:"href"`
	UserID    string `json:"user_id"`
	UserName  string `json:"user_name"`
	EmojiType string `json:"emoji_type"`
	ImageKey  string `json:"image_key"`
	Language  string `json:"language"`
}

type postBody struct {
	Title   string          `json:"title"`
	Content [][]postElement `json:"content"`
}

// postText flattens rich text: the title, then one line per paragraph.
// Received posts carry {"title","content"}; sent ones nest them under a
// language key, which is accepted too.
func postText(content string) (string, error) {
	var p postBody
	if err := json.Unmarshal([]byte(content), &p); err != nil {
		return "", fmt.Errorf("post content: %w", err)
	}
	if p.Content == nil && p.Title == "" {
		var langs map[string]postBody
		if err := json.Unmarshal([]byte(content), &langs); err == nil {
			for _, k := range []string{"zh_cn", "en_us", "ja_jp"} {
				if b, ok := langs[k]; ok {
					p = b
					break
				}
			}
			if p.Content == nil {
				for _, b := range langs {
					p = b
					break
				}
			}
		}
	}
	var lines []string
	if p.Title != "" {
		lines = append(lines, p.Title)
	}
	for _, para := range p.Content {
		var b strings.Builder
		for _, e := range para {
			switch e.Tag {
			case "text", "md", "code_block":
				b.WriteString(e.Text)
			case "a":
				b.WriteString(e.Text)
				if e.Href != "" && e.Href != e.Text {
					b.WriteString(" (" + e.Href + ")")
				}
			case "at":
				if strings.HasPrefix(e.UserID, "@_") {
					b.WriteString(e.UserID) // placeholder, resolved by stripMentions
				} else if e.UserName != "" {
					b.WriteString("@" + e.UserName)
				}
			case "media":
				b.WriteString("[video]")
			case "emotion":
				b.WriteString(":" + e.EmojiType + ":")
			case "hr":
				b.WriteString("---")
			}
		}
		lines = append(lines, b.String())
	}
	return strings.Join(lines, "\n"), nil
}

// botIdentity caches the bot's open_id, needed to tell its own mention from
// others'. Only the intake goroutine uses it; the mutex guards tests.
type botIdentity struct {
	mu      sync.Mutex
	openID  string
	lastTry time.Time
}

// botOpenID returns the bot's open_id, fetching it on first use (bounded by
// botInfoTimeout, retried at most every botInfoRetry). "" if unknown.
func (a *Adapter) botOpenID(ctx context.Context) string {
	a.bot.mu.Lock()
	defer a.bot.mu.Unlock()
	if a.bot.openID != "" {
		return a.bot.openID
	}
	if !a.bot.lastTry.IsZero() && time.Since(a.bot.lastTry) < a.timing.botInfoRetry {
		return ""
	}
	a.bot.lastTry = time.Now()
	ctx, cancel := context.WithTimeout(ctx, a.timing.botInfoTimeout)
	defer cancel()
	id, err := a.rest.botInfo(ctx)
	if err != nil {
		a.Log.WithError(err).Warn("feishu: cannot read the bot's open_id; any mention in a group counts as a mention of the bot")
		return ""
	}
	a.bot.openID = id
	return id
}

// Fragment reassembly. The platform splits large events over several frames
// sharing a message_id header, numbered by seq out of sum. The read loop
// owns the buffer, so reassembly needs no locking (the SDK reassembles on
// concurrent goroutines and loses fragments).
//
// Everything a server controls is bounded: fragments per event, incomplete
// events at once, and the bytes they hold, counted as copied (a fragment's
// payload is copied out of its websocket message, so a 1-byte fragment
// cannot pin a 4 MiB message) plus the bookkeeping of each set.
const (
	maxFragments     = 1024     // fragments of one event
	maxFragmentSets  = 64       // incomplete events; past it the oldest is dropped
	maxFragmentBytes = 16 << 20 // all incomplete events together
	// setOverhead and slotOverhead are the bytes counted for a set besides
	// its id and payloads, and for each of its sum fragment slots (a slice
	// header).
	setOverhead  = 128
	slotOverhead = 24
)

type fragSet struct {
	id    string
	sum   int
	parts [][]byte // nil: not received yet
	got   int
	size  int // bytes counted for this set
	first time.Time
	elem  *list.Element // in reassembler.order
}

// reassembler buffers incomplete fragmented events. order queues the sets
// by arrival of their first fragment; all share one TTL, so the front is
// always the next to expire, and expiring costs nothing per frame beyond
// the sets it drops.
type reassembler struct {
	ttl   time.Duration
	sets  map[string]*fragSet
	order *list.List // of *fragSet, oldest first
	bytes int
}

func newReassembler(ttl time.Duration) *reassembler {
	return &reassembler{ttl: ttl, sets: map[string]*fragSet{}, order: list.New()}
}

// add stores fragment f received at now. It returns the whole payload once
// complete, and how many incomplete sets it dropped: sets older than the
// TTL, and the oldest sets when there are too many or they hold too many
// bytes. The platform redelivers a dropped event, since its frames were
// never acknowledged.
func (r *reassembler) add(f *pbbp2.Frame, now time.Time) (payload []byte, complete bool, dropped int, err error) {
	dropped = r.expire(now)
	sum, ok, err := f.HeaderInt(pbbp2.HeaderSum)
	if err != nil {
		return nil, false, dropped, err
	}
	if !ok || sum <= 1 {
		return f.Payload, true, dropped, nil
	}
	if sum > maxFragments {
		return nil, false, dropped, fmt.Errorf("feishu: event split into %d fragments, limit %d", sum, maxFragments)
	}
	seq, ok, err := f.HeaderInt(pbbp2.HeaderSeq)
	if err != nil {
		return nil, false, dropped, err
	}
	if !ok || seq < 0 || seq >= sum {
		return nil, false, dropped, fmt.Errorf("feishu: fragment seq %d outside [0, %d)", seq, sum)
	}
	id := f.Header(pbbp2.HeaderMessageID)
	if id == "" {
		return nil, false, dropped, errors.New("feishu: fragment without message_id")
	}
	set := r.sets[id]
	if set != nil && set.sum != sum {
		r.drop(set)
		return nil, false, dropped, fmt.Errorf("feishu: fragments of %s disagree on sum (%d, %d)", id, set.sum, sum)
	}
	if set == nil {
		for len(r.sets) >= maxFragmentSets {
			r.drop(r.order.Front().Value.(*fragSet))
			dropped++
		}
		set = &fragSet{id: id, sum: sum, parts: make([][]byte, sum), first: now}
		set.size = setOverhead + len(id) + sum*slotOverhead
		set.elem = r.order.PushBack(set)
		r.sets[id] = set
		r.bytes += set.size
	}
	// A copy: f.Payload points into the whole websocket message.
	part := make([]byte, len(f.Payload))
	copy(part, f.Payload)
	if old := set.parts[seq]; old != nil {
		set.size -= len(old)
		r.bytes -= len(old)
	} else {
		set.got++
	}
	set.parts[seq] = part
	set.size += len(part)
	r.bytes += len(part)
	if set.size > maxFragmentBytes {
		r.drop(set)
		return nil, false, dropped, fmt.Errorf("feishu: fragmented event %s exceeds %d bytes", id, maxFragmentBytes)
	}
	for r.bytes > maxFragmentBytes {
		// Older incomplete events make room for this one.
		r.drop(r.order.Front().Value.(*fragSet))
		dropped++
	}
	if set.got < set.sum {
		return nil, false, dropped, nil
	}
	payload = make([]byte, 0, set.size-setOverhead-len(id)-sum*slotOverhead)
	for _, p := range set.parts {
		payload = append(payload, p...)
	}
	r.drop(set)
	return payload, true, dropped, nil
}

func (r *reassembler) drop(set *fragSet) {
	if r.sets[set.id] != set {
		return
	}
	r.bytes -= set.size
	delete(r.sets, set.id)
	r.order.Remove(set.elem)
}

// expire drops the sets whose first fragment came more than the TTL before
// now, from the front of the queue.
func (r *reassembler) expire(now time.Time) int {
	n := 0
	for e := r.order.Front(); e != nil; e = r.order.Front() {
		set := e.Value.(*fragSet)
		if now.Sub(set.first) <= r.ttl {
			break
		}
		r.drop(set)
		n++
	}
	return n
}
