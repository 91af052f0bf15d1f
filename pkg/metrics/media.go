// SPDX-License-Identifier: Apache-2.0

package metrics

import "github.com/prometheus/client_golang/prometheus"

// mediaMetrics count images, files and voice notes.
type mediaMetrics struct {
	unsupported *prometheus.CounterVec
	fetches     *prometheus.CounterVec
	bytes       *prometheus.CounterVec
}

func newMediaMetrics(reg prometheus.Registerer) mediaMetrics {
	m := mediaMetrics{
		unsupported: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_unsupported_total",
			Help: "Inbound items herald cannot pass to the agent (the user is told), by platform and kind (sticker, location, …; other for anything unlisted).",
		}, []string{"platform", "kind"}),
		fetches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_fetches_total",
			Help: "Downloads of media files, by direction (in: attachments, out: files of replies) and result (ok, too_large, no_space, forbidden, failed).",
		}, []string{"direction", "result"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_media_bytes_total",
			Help: "Bytes of media files stored by downloads, by direction (in, out).",
		}, []string{"direction"}),
	}
	reg.MustRegister(m.unsupported, m.fetches, m.bytes)
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
