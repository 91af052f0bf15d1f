// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
)

// mediaReplies splits an agent reply into text and media parts in order.
// Each file the reply names (a Markdown image, a MEDIA: line) is fetched
// into the media store now, before its outbox record is written, so that
// delivery after a restart needs nothing but the store. A file that cannot
// be fetched becomes a text line with its source and the reason. Parts are
// numbered and keyed as text parts are.
func (d *Dispatcher) mediaReplies(it *item, text string, limit int) []message.Outbound {
	segs := media.ParseReply(text)
	hasMedia := false
	for _, s := range segs {
		hasMedia = hasMedia || s.IsMedia()
	}
	if !hasMedia {
		return d.replies(it, text, limit)
	}
	type part struct {
		text string
		m    *message.OutboundMedia
	}
	var parts []part
	for _, s := range segs {
		if !s.IsMedia() {
			for _, t := range Split(s.Text, limit) {
				parts = append(parts, part{text: t})
			}
			continue
		}
		om, err := d.fetchOutbound(d.ctx, s)
		var size int64
		if om != nil {
			size = om.Size
		}
		d.metrics.MediaFetch("out", fetchResult(err), size)
		if err != nil {
			d.log.WithFields(logrus.Fields{"platform": it.msg.Platform, "message": it.id}).WithError(err).Warn("cannot fetch a file of the reply; sending its link instead")
			parts = append(parts, part{text: fmt.Sprintf("[%s could not be sent: %s]", s.Source, d.outboundReason(err))})
			continue
		}
		parts = append(parts, part{m: om})
	}
	if len(parts) > d.opts.MaxReplyParts {
		d.log.WithFields(logrus.Fields{"platform": it.msg.Platform, "message": it.id, "parts": len(parts)}).Warn("reply longer than dispatch.max_reply_parts messages; the rest is cut")
		parts = parts[:d.opts.MaxReplyParts]
	}
	out := make([]message.Outbound, len(parts))
	for i, p := range parts {
		o := it.msg.ReplyTo()
		o.Text, o.Media = p.text, p.m
		o.Part, o.Parts = i+1, len(parts)
		o.IdempotencyKey = message.IdempotencyKey(it.msg.Platform, it.msg.EventID, i+1)
		if i > 0 || p.m != nil {
			delete(o.Meta, metaEditID)
		}
		out[i] = o
	}
	return out
}

// fetchOutbound stores the file a reply segment names: a URL through the
// guarded client, a path only under media.outbound_dirs. A full store is
// pruned at once and the file fetched again.
func (d *Dispatcher) fetchOutbound(ctx context.Context, s media.Segment) (*message.OutboundMedia, error) {
	om, err := d.fetchOutboundOnce(ctx, s)
	if errors.Is(err, media.ErrStoreFull) && ctx.Err() == nil && d.pruneMediaNow(ctx) {
		om, err = d.fetchOutboundOnce(ctx, s)
	}
	return om, err
}

func (d *Dispatcher) fetchOutboundOnce(ctx context.Context, s media.Segment) (*message.OutboundMedia, error) {
	m := d.opts.Media
	ctx, cancel := context.WithTimeout(ctx, m.DownloadTimeout)
	defer cancel()
	var item media.Item
	name := path.Base(s.Source)
	if strings.HasPrefix(s.Source, "http://") || strings.HasPrefix(s.Source, "https://") {
		var err error
		if item, err = m.Client.Fetch(ctx, s.Source, m.Store); err != nil {
			return nil, fmt.Errorf("dispatch: fetch reply media: %w", err)
		}
		if i := strings.IndexAny(name, "?#"); i >= 0 {
			name = name[:i]
		}
	} else {
		resolved, _, err := media.LocalFile(s.Source, m.OutboundDirs, m.MaxBytes)
		if err != nil {
			return nil, fmt.Errorf("dispatch: reply media: %w", err)
		}
		f, err := os.Open(resolved)
		if err != nil {
			return nil, fmt.Errorf("dispatch: reply media: %w", err)
		}
		defer f.Close()
		if item, err = m.Store.Put(ctx, f, m.MaxBytes); err != nil {
			return nil, fmt.Errorf("dispatch: reply media: %w", err)
		}
	}
	return &message.OutboundMedia{Kind: item.Kind, Source: s.Source, Name: media.SafeName(name, item.MIME), MIME: item.MIME,
		Size: item.Size, SHA256: item.SHA256, Caption: s.Alt}, nil
}

// outboundReason says why a file of a reply or of the send API could not
// be fetched.
func (d *Dispatcher) outboundReason(err error) string {
	switch {
	case errors.Is(err, media.ErrOutsideDirs):
		return "not under media.outbound_dirs"
	case errors.Is(err, media.ErrForbiddenAddress):
		return "its address is not allowed"
	case errors.Is(err, adapter.ErrPermanent) && !errors.Is(err, adapter.ErrTooLarge):
		return "its source refused it"
	}
	var maxBytes int64
	if d.opts.Media != nil {
		maxBytes = d.opts.Media.MaxBytes
	}
	return fetchReason(err, &message.Attachment{}, maxBytes)
}

// prepareMediaPart readies a media part for Send: the file's path and a
// signed link, or, for a platform that cannot upload this kind, a text line
// with the link instead. A file this node does not hold (in cluster mode
// another node stored it and the conversation moved here; or it was
// pruned) is fetched again from its source, within ctx; when that fails,
// or gives other bytes than the reply named, the part becomes a text line
// with the reason and the source's link: the part is never dropped, and
// it keeps its idempotency key.
func (d *Dispatcher) prepareMediaPart(ctx context.Context, p *platform, msg *message.Outbound) {
	om := msg.Media
	m := d.opts.Media
	if om == nil || m == nil {
		return
	}
	item, err := m.Store.Stat(om.SHA256)
	if err != nil {
		item, err = d.refetchPart(ctx, msg)
	}
	if err != nil {
		msg.Media = nil
		msg.Text = strings.TrimSpace(om.Caption + "\n" + fmt.Sprintf("[%s could not be sent: %s]", om.Name, err.Error()))
		if strings.HasPrefix(om.Source, "http://") || strings.HasPrefix(om.Source, "https://") {
			msg.Text += " " + om.Source
		}
		return
	}
	link, err := m.Signer.URL(m.PublicURL, item, om.Name, m.URLTTL)
	if err != nil {
		link = om.Source
	}
	ms, ok := p.Adapter.(adapter.MediaSender)
	if !ok || !ms.SendsMedia(om.Kind) {
		msg.Media = nil
		msg.Text = strings.TrimSpace(om.Caption + " " + fmt.Sprintf("[%s] %s", media.Describe(media.DescribedItem(item, om.Name, 0)), link))
		return
	}
	om2 := *om
	om2.Path = m.Store.Path(om.SHA256)
	om2.URL = link
	msg.Media = &om2
}

// errRefetch says why a reply's file this node does not hold could not be
// fetched again; its text is shown to the user.
type errRefetch string

func (e errRefetch) Error() string { return string(e) }

// refetchPart fetches the file of media part msg again from its source
// into this node's store, and checks that it is the file the reply named.
func (d *Dispatcher) refetchPart(ctx context.Context, msg *message.Outbound) (media.Item, error) {
	m := d.opts.Media
	om := msg.Media
	log := d.log.WithFields(logrus.Fields{"platform": msg.Platform, "chat": msg.ChatID, "source": om.Source, "sha256": om.SHA256})
	got, err := d.fetchOutbound(ctx, media.Segment{Source: om.Source})
	var size int64
	if got != nil {
		size = got.Size
	}
	d.metrics.MediaFetch("out", fetchResult(err), size)
	if err != nil {
		log.WithError(err).Warn("the file of a reply is not stored here and cannot be fetched again; sending its source instead")
		return media.Item{}, errRefetch("the file is not stored here and could not be fetched again (" + d.outboundReason(err) + ")")
	}
	if got.SHA256 != om.SHA256 {
		log.WithField("fetched", got.SHA256).Warn("the file of a reply is not stored here and its source now gives another file; sending its source instead")
		return media.Item{}, errRefetch("the file is not stored here and its source now gives another file")
	}
	item, err := m.Store.Stat(om.SHA256)
	if err != nil {
		// Pruned at once (a full store): as good as a failed fetch.
		return media.Item{}, errRefetch("the file is not stored here and could not be kept")
	}
	log.Info("the file of a reply was not stored here: fetched again from its source")
	return item, nil
}

// mediaGrace protects a file just stored whose reference is not yet
// recorded (a fetch in progress) from the prune.
const mediaGrace = time.Hour

// pruneMedia removes the media files no kept message or pending reply
// refers to (after the message prune, so with message retention), except
// those stored within mediaGrace, and returns how many bytes it freed.
func (d *Dispatcher) pruneMedia(ctx context.Context, now time.Time) int64 {
	m := d.opts.Media
	if m == nil {
		return 0
	}
	d.mediaPrune.Lock()
	defer d.mediaPrune.Unlock()
	ref, err := d.store.ReferencedMedia(ctx)
	if err != nil {
		d.log.WithError(err).Warn("pruning media failed")
		return 0
	}
	n, freed, err := m.Store.Prune(func(sha string) bool {
		if ref[sha] {
			return true
		}
		info, err := os.Stat(m.Store.Path(sha))
		return err == nil && now.Sub(info.ModTime()) < mediaGrace
	})
	if err != nil {
		d.log.WithError(err).Warn("pruning media failed")
	} else if n > 0 {
		d.log.WithFields(logrus.Fields{"files": n, "bytes": freed}).Debug("pruned media files")
	}
	return freed
}

// mediaPruneEvery is how often at most a full media store triggers a prune
// out of turn; the hourly maintenance prunes regardless.
const mediaPruneEvery = time.Minute

// pruneMediaNow prunes the media store at once, when a download found it
// full, unless a full store already did within mediaPruneEvery. It reports
// whether the prune freed space, so the download is worth another try.
func (d *Dispatcher) pruneMediaNow(ctx context.Context) bool {
	d.mediaPrune.Lock()
	now := time.Now()
	if !d.mediaPrunedAt.IsZero() && now.Sub(d.mediaPrunedAt) < mediaPruneEvery {
		d.mediaPrune.Unlock()
		return false
	}
	d.mediaPrunedAt = now
	d.mediaPrune.Unlock()
	freed := d.pruneMedia(ctx, now)
	if freed > 0 {
		d.log.WithField("bytes", freed).Info("media store was full: pruned files no message refers to")
	}
	return freed > 0
}

// uploadRefused reports whether err is a platform's final refusal of a file
// (as opposed to an outcome herald cannot know, or credentials it must
// alarm on).
func uploadRefused(err error) bool {
	if errors.Is(err, adapter.ErrNotResent) || errors.Is(err, adapter.ErrUnauthorized) || errors.Is(err, adapter.ErrAmbiguous) {
		return false
	}
	return errors.Is(err, adapter.ErrTooLarge) || errors.Is(err, adapter.ErrPermanent)
}

// maxReasonLen bounds the reason shown to the user for a refused upload.
const maxReasonLen = 200

// uploadFallback turns a media part whose upload the platform refused into
// a text part: the caption, the file's link and why it is not attached.
func uploadFallback(msg message.Outbound, err error) message.Outbound {
	om := msg.Media
	link := om.URL
	if link == "" {
		link = om.Source
	}
	reason := err.Error()
	if errors.Is(err, adapter.ErrTooLarge) {
		reason = "the file is too large for " + msg.Platform
	} else if len(reason) > maxReasonLen {
		reason = strings.ToValidUTF8(reason[:maxReasonLen], "") + "…"
	}
	name := om.Name
	if name == "" {
		name = om.Source
	}
	msg.Media = nil
	msg.Text = strings.TrimSpace(om.Caption + "\n" + fmt.Sprintf("[%s could not be attached: %s] %s", name, reason, link))
	return msg
}
