// SPDX-License-Identifier: Apache-2.0

// Package matrixtest is a fake Matrix homeserver for herald's tests: the
// client-server endpoints the matrix adapter uses (whoami, profile,
// /sync long polling, join, leave, send), on 127.0.0.1, with knobs for the
// failures the adapter must survive: a batch delivered twice, 429
// M_LIMIT_EXCEEDED with retry_after_ms, a long poll that never returns and
// an expired access token (401 M_UNKNOWN_TOKEN).
package matrixtest
