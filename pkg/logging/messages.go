// SPDX-License-Identifier: Apache-2.0

package logging

import "github.com/sirupsen/logrus"

// FieldMessageID is the logrus field that becomes the journal's MESSAGE_ID.
const FieldMessageID = "message_id"

// MESSAGE_IDs of herald's lifecycle events (generated once with
// `systemd-id128 new`; never change one, operators filter on them). Every
// constant has a row in Messages.
const (
	MsgStarting            = "496f7fda07f84147a538ca772fa4ea23"
	MsgReady               = "a946c2ccf8034e20ada6977bd0fefbc4"
	MsgStopping            = "f103d41ba31c4230ac8b7a78a1bef4be"
	MsgDrainFinished       = "817a23dc27974222a070ba4cd444784b"
	MsgDrainTimedOut       = "bf895fb124774902a639f33db5a92770"
	MsgAdapterStopTimeout  = "cd4e82708f404b67be53643ea9c28b52"
	MsgStopped             = "eb608da9800f4602bb44501e93ea1ef7"
	MsgReloadAccepted      = "6c682bcdc1f94ea49bc33b49be78d765"
	MsgReloadRejected      = "bfb3ce0f85754c44a2c05fb41c6486ac"
	MsgInstanceRefused     = "33b3c7e3740741b1903bd1ddbcb4f137"
	MsgWatchdogCheckFailed = "674431bd8b3c4a8f910b3f71d25c3cad"
	MsgConfigInvalid       = "748f084124964534b5f4db0efba74d69"
	MsgAdapterFatal        = "46e34b41ce774df7bc42caf3978e104f"
	MsgStoreError          = "6c682b6a83ba4f7eb07a2bd5ab35d98e"
	MsgStoreUnwritable     = "5ae7681713ea4a1cb6de997c7075e333"
	MsgStoreWritable       = "938c2525ba4e47bb9b80635f6ced8db1"
	MsgPairingApproved     = "98534b79787a4dce851ad399a591e238"
	MsgPairingRevoked      = "c6e02b3a8a1d4e97b75c372e632dacf2"
)

// Message describes one MESSAGE_ID, for the journal catalog.
type Message struct {
	ID      string // 128-bit lowercase hex
	Name    string // Go constant name
	Subject string // one line: the catalog's Subject:
}

// Messages lists every MESSAGE_ID, in lifecycle order.
var Messages = []Message{
	{MsgStarting, "MsgStarting", "herald is starting"},
	{MsgReady, "MsgReady", "herald is ready: listeners bound, dispatcher accepting"},
	{MsgStopping, "MsgStopping", "herald received a stop request and stopped intake"},
	{MsgDrainFinished, "MsgDrainFinished", "all turns in flight finished during shutdown"},
	{MsgDrainTimedOut, "MsgDrainTimedOut", "shutdown drain timed out; unfinished turns stay pending for the next start"},
	{MsgAdapterStopTimeout, "MsgAdapterStopTimeout", "a platform adapter did not stop within its bound and was abandoned"},
	{MsgStopped, "MsgStopped", "herald stopped"},
	{MsgReloadAccepted, "MsgReloadAccepted", "configuration reloaded"},
	{MsgReloadRejected, "MsgReloadRejected", "configuration reload rejected; the previous configuration stays in effect"},
	{MsgInstanceRefused, "MsgInstanceRefused", "start refused: another herald instance is running"},
	{MsgWatchdogCheckFailed, "MsgWatchdogCheckFailed", "watchdog health check failed; WATCHDOG=1 withheld"},
	{MsgConfigInvalid, "MsgConfigInvalid", "configuration is invalid; herald does not start"},
	{MsgAdapterFatal, "MsgAdapterFatal", "a platform adapter failed permanently and stopped"},
	{MsgStoreError, "MsgStoreError", "the message store failed"},
	{MsgStoreUnwritable, "MsgStoreUnwritable", "the message store cannot be written (disk full, read-only or I/O error)"},
	{MsgStoreWritable, "MsgStoreWritable", "the message store can be written again"},
	{MsgPairingApproved, "MsgPairingApproved", "a user was let in by an approved pairing code"},
	{MsgPairingRevoked, "MsgPairingRevoked", "a user's pairing approval was revoked"},
}

// Event returns log with the MESSAGE_ID id: in the journal it becomes
// MESSAGE_ID=id; text and JSON output show message_id=id.
func Event(log *logrus.Entry, id string) *logrus.Entry {
	return log.WithField(FieldMessageID, id)
}
