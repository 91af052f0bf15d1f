// SPDX-License-Identifier: Apache-2.0

package dispatch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/heraldgw/herald/pkg/adapter"
	"github.com/heraldgw/herald/pkg/agent"
	"github.com/heraldgw/herald/pkg/media"
	"github.com/heraldgw/herald/pkg/message"
	"github.com/heraldgw/herald/pkg/store"
)

// Media is what the dispatcher needs to pass inbound attachments to the
// agent (the media: configuration section). Without it (nil Options.Media)
// attachments are named in a note and not fetched.
type Media struct {
	Store  *media.Store
	Client *media.Client
	Signer *media.Signer
	// PublicURL is the base of signed links; URLTTL their lifetime.
	PublicURL string
	URLTTL    time.Duration
	// MaxBytes bounds one file.
	MaxBytes int64
	// ImageTransport is auto, data or url; DataURLMaxBytes caps a data: URL.
	ImageTransport  string
	DataURLMaxBytes int64
	// Retries after a temporary failure; DownloadTimeout bounds one try.
	Retries         int
	DownloadTimeout time.Duration
	// OutboundDirs are where a reply's MEDIA: paths may point.
	OutboundDirs []string
	// Transcriber, if set, turns voice notes into text.
	Transcriber *media.Transcriber
}

// mediaBackoff is the first pause between download attempts, doubled per
// attempt up to mediaMaxBackoff.
const (
	mediaBackoff    = 500 * time.Millisecond
	mediaMaxBackoff = 10 * time.Second
)

// userMessage builds the agent message of an inbound message: its text,
// then one note per attachment (what it is and a signed link, or why it
// could not be fetched), and for images an image_url part. An error is
// returned only when the turn must not run now (shutdown, or the store
// cannot record an outcome): the message stays pending.
func (d *Dispatcher) userMessage(ctx context.Context, it *item, p *platform) (agent.Message, error) {
	msg := agent.Message{Role: agent.RoleUser, Content: it.msg.Text}
	it.notices = it.notices[:0]
	for _, k := range it.msg.Unsupported {
		d.metrics.MediaUnsupported(it.msg.Platform, k)
		it.notices = append(it.notices, fmt.Sprintf("herald cannot pass %s to the agent yet.", pluralKind(k)))
	}
	if len(it.msg.Attachments) == 0 {
		return msg, nil
	}
	m := d.opts.Media
	var fetches map[int]store.MediaFetch
	if m != nil {
		var err error
		if fetches, err = d.store.MediaFetches(ctx, it.id); err != nil {
			return msg, err
		}
	}
	text := it.msg.Text
	var notes []string
	var images []agent.ContentPart
	for i := range it.msg.Attachments {
		att := &it.msg.Attachments[i]
		name := att.Name
		if name == "" {
			name = string(att.Kind)
		}
		if m == nil {
			notes = append(notes, fmt.Sprintf("[%s %s was not passed on: media is not configured]", att.Kind, name))
			continue
		}
		f, ok := fetches[i]
		var item media.Item
		if ok && f.Error == "" {
			var err error
			if item, err = m.Store.Stat(f.SHA256); err != nil {
				ok = false // pruned, or fetched by another node (cluster mode): fetch again
			}
		}
		if !ok {
			var ferr error
			item, ferr = d.fetchAttachment(ctx, it, p, att)
			if ferr != nil && ctx.Err() != nil {
				return msg, ctx.Err()
			}
			f = store.MediaFetch{Index: i, At: time.Now()}
			d.metrics.MediaFetch("in", fetchResult(ferr), item.Size)
			if ferr != nil {
				f.Error = fetchReason(ferr, att, m.MaxBytes)
				d.log.WithFields(logrus.Fields{"platform": it.msg.Platform, "message": it.id, "attachment": i}).WithError(ferr).Warn("cannot fetch attachment")
			} else {
				f.SHA256, f.Size, f.MIME = item.SHA256, item.Size, item.MIME
			}
			if err := d.store.RecordMediaFetch(ctx, it.id, f); err != nil {
				return msg, err
			}
		}
		if f.Error != "" {
			it.notices = append(it.notices, fmt.Sprintf("herald could not pass %s %s to the agent: %s.", kindWord(att.Kind), name, f.Error))
			notes = append(notes, fmt.Sprintf("[%s %s could not be fetched: %s]", kindWord(att.Kind), name, f.Error))
			continue
		}
		desc := media.Describe(media.DescribedItem(item, att.Name, att.Duration))
		link, err := m.Signer.URL(m.PublicURL, item, name, m.URLTTL)
		if err != nil {
			return msg, fmt.Errorf("dispatch: sign media link: %w", err)
		}
		if (item.Kind == message.MediaVoice || item.Kind == message.MediaAudio || att.Kind == message.MediaVoice) && m.Transcriber != nil {
			if t, err := d.transcribe(ctx, item, name); err == nil && t != "" {
				text = strings.TrimSpace(strings.TrimSpace(text) + "\n" + t)
			} else if err != nil {
				d.log.WithError(err).Warn("cannot transcribe voice note")
			}
		}
		notes = append(notes, fmt.Sprintf("[%s] %s", desc, link))
		if item.Kind == message.MediaImage {
			images = append(images, agent.ContentPart{Type: "image_url", ImageURL: &agent.ImageURL{URL: d.imageURL(item, link)}})
		}
	}
	msg.Content = strings.TrimSpace(strings.Join(append([]string{text}, notes...), "\n"))
	if len(images) > 0 {
		msg.Parts = append([]agent.ContentPart{{Type: "text", Text: msg.Content}}, images...)
	}
	return msg, nil
}

// fetchAttachment downloads att into the media store, retrying temporary
// failures with backoff; each try is bounded by DownloadTimeout.
func (d *Dispatcher) fetchAttachment(ctx context.Context, it *item, p *platform, att *message.Attachment) (media.Item, error) {
	m := d.opts.Media
	if att.Size > m.MaxBytes {
		return media.Item{}, fmt.Errorf("dispatch: fetch media: %w: %d bytes declared", adapter.ErrTooLarge, att.Size)
	}
	var fetcher adapter.MediaFetcher
	if p != nil {
		fetcher, _ = p.Adapter.(adapter.MediaFetcher)
	}
	var err error
	pruned := false
	for attempt := 0; ; attempt++ {
		var item media.Item
		item, err = d.fetchOnce(ctx, it, fetcher, att)
		if err == nil {
			return item, nil
		}
		if errors.Is(err, media.ErrStoreFull) && !pruned && ctx.Err() == nil {
			// A full store may hold files nothing refers to any more:
			// prune now rather than at the next hourly maintenance.
			pruned = true
			if d.pruneMediaNow(ctx) {
				continue
			}
		}
		if permanentFetch(err) || attempt >= m.Retries || ctx.Err() != nil {
			return media.Item{}, err
		}
		wait := min(mediaBackoff<<attempt, mediaMaxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return media.Item{}, ctx.Err()
		case <-t.C:
		}
	}
}

func (d *Dispatcher) fetchOnce(ctx context.Context, it *item, fetcher adapter.MediaFetcher, att *message.Attachment) (media.Item, error) {
	m := d.opts.Media
	ctx, cancel := context.WithTimeout(ctx, m.DownloadTimeout)
	defer cancel()
	var body io.ReadCloser
	if fetcher != nil {
		b, size, err := fetcher.FetchMedia(ctx, &it.msg, att)
		if err != nil {
			return media.Item{}, fmt.Errorf("dispatch: fetch media: %w", err)
		}
		body = b
		if size > m.MaxBytes {
			body.Close()
			return media.Item{}, fmt.Errorf("dispatch: fetch media: %w: %d bytes announced", adapter.ErrTooLarge, size)
		}
	} else {
		if !strings.HasPrefix(att.Ref, "http://") && !strings.HasPrefix(att.Ref, "https://") {
			return media.Item{}, fmt.Errorf("dispatch: fetch media: %w: reference is not an http(s) URL", adapter.ErrPermanent)
		}
		dl, err := m.Client.Get(ctx, att.Ref)
		if err != nil {
			return media.Item{}, fmt.Errorf("dispatch: fetch media: %w", err)
		}
		body = dl.Body
	}
	defer body.Close()
	item, err := m.Store.Put(ctx, body, m.MaxBytes)
	if err != nil && ctx.Err() != nil && errors.Is(err, context.DeadlineExceeded) {
		return media.Item{}, fmt.Errorf("dispatch: fetch media: %w: download took longer than %s", adapter.ErrTemporary, m.DownloadTimeout)
	}
	if err != nil {
		return media.Item{}, fmt.Errorf("dispatch: fetch media: %w", err)
	}
	return item, nil
}

// permanentFetch reports whether another try cannot help.
func permanentFetch(err error) bool {
	return errors.Is(err, adapter.ErrPermanent) || errors.Is(err, adapter.ErrTooLarge) ||
		errors.Is(err, media.ErrNoSpace) || errors.Is(err, media.ErrStoreFull) || errors.Is(err, media.ErrForbiddenAddress)
}

// fetchReason says in a few words why an attachment is missing.
func fetchReason(err error, att *message.Attachment, maxBytes int64) string {
	switch {
	case errors.Is(err, adapter.ErrTooLarge):
		if att.Size > maxBytes {
			return fmt.Sprintf("too large (%s > %s)", media.HumanSize(att.Size), media.HumanSize(maxBytes))
		}
		return fmt.Sprintf("too large (over %s)", media.HumanSize(maxBytes))
	case errors.Is(err, media.ErrNoSpace), errors.Is(err, media.ErrStoreFull):
		return "herald's media store is full"
	case errors.Is(err, media.ErrForbiddenAddress):
		return "its address is not allowed"
	case errors.Is(err, adapter.ErrPermanent):
		return "the platform refused it"
	}
	return "the download failed"
}

func kindWord(k message.MediaKind) string {
	if k == message.MediaVoice {
		return "voice note"
	}
	return string(k)
}

// imageURL chooses a data: URL or the signed link for an image.
func (d *Dispatcher) imageURL(item media.Item, link string) string {
	m := d.opts.Media
	if m.ImageTransport == "url" || m.ImageTransport != "data" && item.Size > m.DataURLMaxBytes {
		return link
	}
	f, err := m.Store.Open(item.SHA256)
	if err != nil {
		return link
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, m.MaxBytes+1))
	if err != nil {
		return link
	}
	return "data:" + item.MIME + ";base64," + base64.StdEncoding.EncodeToString(b)
}

func (d *Dispatcher) transcribe(ctx context.Context, item media.Item, name string) (string, error) {
	f, err := os.Open(d.opts.Media.Store.Path(item.SHA256))
	if err != nil {
		return "", fmt.Errorf("dispatch: transcribe: %w", err)
	}
	defer f.Close()
	return d.opts.Media.Transcriber.Transcribe(ctx, f, name, item.MIME)
}

// pluralKind names what the user sent, for a notice: "stickers".
func pluralKind(kind string) string {
	if kind == "" {
		return "this kind of message"
	}
	if strings.HasSuffix(kind, "s") {
		return kind
	}
	return kind + "s"
}

// fetchResult is the result label of a download's metric.
func fetchResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, adapter.ErrTooLarge):
		return "too_large"
	case errors.Is(err, media.ErrNoSpace), errors.Is(err, media.ErrStoreFull):
		return "no_space"
	case errors.Is(err, media.ErrForbiddenAddress):
		return "forbidden"
	}
	return "failed"
}
