// SPDX-License-Identifier: Apache-2.0

// Package adminapi is the wire format of herald's admin socket and send
// API, and the client of both. The daemon (pkg/herald) serves these types
// and the herald command reads them with the same definitions: GET /status
// answers StatusReport, POST /reload answers ReloadAnswer, /v1/messages,
// /v1/turns and /v1/pairing take and answer the Send, Turn and Pairing
// types, and every 4xx and 5xx of the send API but 401 answers Error.
package adminapi
