// SPDX-License-Identifier: Apache-2.0

package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

func TestMediaUnsupportedKindBounded(t *testing.T) {
	m := Nop()
	m.MediaUnsupported("telegram", "sticker")
	m.MediaUnsupported("telegram", "made-up-kind-from-a-platform")
	if got := mediaCounter(m.media.unsupported.WithLabelValues("telegram", "sticker")); got != 1 {
		t.Fatalf("sticker %v", got)
	}
	if got := mediaCounter(m.media.unsupported.WithLabelValues("telegram", "other")); got != 1 {
		t.Fatalf("unknown kind not folded into other: %v", got)
	}
	m.MediaFetch("in", "ok", 100)
	m.MediaFetch("in", "too_large", 0)
	if got := mediaCounter(m.media.bytes.WithLabelValues("in")); got != 100 {
		t.Fatalf("bytes %v", got)
	}
}

func mediaCounter(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		return -1
	}
	return m.GetCounter().GetValue()
}
