// SPDX-License-Identifier: Apache-2.0

// Package mattermosttest is a fake Mattermost server for tests: the REST API
// v4 endpoints and the event websocket herald's adapter uses, on an httptest
// server on 127.0.0.1, with knobs for the faults the adapter must survive
// (redelivered events, 429 with retry hints, a blackholed websocket, an
// expired token, posts made while no websocket is connected, a send whose
// answer is lost).
package mattermosttest
