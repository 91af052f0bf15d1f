// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// mediaMetrics count images, files and voice notes.
type mediaMetrics struct {
	unsupported *prometheus.CounterVec
	fetches     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
	refused     *prometheus.CounterVec
	storeBytes  prometheus.Gauge
	storeLimit  prometheus.Gauge
}

func newMediaMetrics(reg prometheus.Registerer) mediaMetrics {
	m := mediaMetrics{
		unsupported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_unsupported_total",
			Help: "Inbound items herald cannot pass to the agent (the user is told), by platform and kind (sticker, location, …; other for anything unlisted).",
		}, []string{"platform", "kind"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_fetches_total",
			Help: "Downloads of media files, by direction (in: attachments, out: files of replies) and result (ok, too_large, no_space, forbidden, failed; upload_refused: the platform refused a reply's file and its link was sent instead).",
		}, []string{"direction", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_bytes_total",
			Help: "Bytes of media files stored by downloads, by direction (in, out).",
		}, []string{"direction"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_links_refused_total",
			Help: "Requests for /media/ links herald refused (404), by reason (bad_token, bad_mac, expired, missing, method; other for anything unlisted).",
		}, []string{"reason"}),
		storeBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_media_store_bytes",
			Help: "Bytes of the files in the media store (state_dir/media).",
		}),
		storeLimit: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "herald_media_store_limit_bytes",
			Help: "The media store's cap, media.max_total_bytes (0: none). Downloads that would pass it fail, and the user is told.",
		}),
	}
	reg.MustRegister(m.unsupported, m.fetches, m.bytes, m.refused, m.storeBytes, m.storeLimit)
	return m
}

// unsupportedKinds bounds the kind label; anything else is "other".
var unsupportedKinds = map[string]bool{"sticker": true, "location": true, "contact": true, "poll": true, "animation": true, "video_note": true, "dice": true, "game": true, "venue": true}

// MediaUnsupported counts an inbound item of a kind the agent cannot use.
func (m *Metrics) MediaUnsupported(platform, kind string) {
	if !unsupportedKinds[kind] {
		kind = "other"
	}
	m.media.unsupported.WithLabelValues(platform, kind).Inc()
}

// MediaFetch counts a download by direction ("in" or "out") and result;
// bytes is what it stored (0 on failure).
func (m *Metrics) MediaFetch(direction, result string, bytes int64) {
	m.media.fetches.WithLabelValues(direction, result).Inc()
	if bytes > 0 {
		m.media.bytes.WithLabelValues(direction).Add(float64(bytes))
	}
}

// MediaStore sets the media store's usage and cap in bytes.
func (m *Metrics) MediaStore(used, limit int64) {
	m.media.storeBytes.Set(float64(used))
	m.media.storeLimit.Set(float64(limit))
}

// linkReasons bounds the reason label of refused media links.
var linkReasons = map[string]bool{"bad_token": true, "bad_mac": true, "expired": true, "missing": true, "method": true}

// MediaLinkRefused counts a request for a signed media link that herald
// refused.
func (m *Metrics) MediaLinkRefused(reason string) {
	if !linkReasons[reason] {
		reason = "other"
	}
	m.media.refused.WithLabelValues(reason).Inc()
}

// MediaLinksRefused is the total of refused media links, for tests and
// status.
func (m *Metrics) MediaLinksRefused() float64 {
	ch := make(chan prometheus.Metric, len(linkReasons)+1)
	m.media.refused.Collect(ch)
	close(ch)
	var n float64
	for c := range ch {
		var d dto.Metric
		if c.Write(&d) == nil {
			n += d.GetCounter().GetValue()
		}
	}
	return n
}
