// SPDX-License-Identifier: Apache-2.0

package metrics

import "github.com/prometheus/client_golang/prometheus"

// sendMetrics count the messages of the send API.
type sendMetrics struct {
	requests   *prometheus.CounterVec
	turns      *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

func newSendMetrics(reg prometheus.Registerer) sendMetrics {
	s := sendMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_send_requests_total",
			Help: "POST /v1/messages requests by platform and result (accepted, duplicate, invalid, unavailable, error); unauthorized counts every refused request of the API (a wrong token, a caller of the admin socket that is not root or herald).",
		}, []string{"platform", "result"}),
		turns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_turn_requests_total",
			Help: "POST /v1/turns requests by platform and result (accepted, invalid, unavailable, error).",
		}, []string{"platform", "result"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "herald_send_parts_total",
			Help: "Parts of messages of the send API whose delivery ended, by platform and result (sent, failed).",
		}, []string{"platform", "result"}),
	}
	reg.MustRegister(s.requests, s.turns, s.deliveries)
	return s
}

// SendRequest counts a request to the send API.
func (m *Metrics) SendRequest(platform, result string) {
	m.send.requests.WithLabelValues(platform, result).Inc()
}

// SendDelivery counts the end of a sent message's part.
func (m *Metrics) SendDelivery(platform, result string) {
	m.send.deliveries.WithLabelValues(platform, result).Inc()
}

// TurnRequest counts a request to POST /v1/turns.
func (m *Metrics) TurnRequest(platform, result string) {
	m.send.turns.WithLabelValues(platform, result).Inc()
}
