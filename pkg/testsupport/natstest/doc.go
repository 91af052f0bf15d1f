// SPDX-License-Identifier: Apache-2.0

// Package natstest boots an in-process NATS server with JetStream on
// 127.0.0.1 (random port, temporary store directory) for tests, and a TCP
// proxy in front of it that a test can blackhole to cut a client off. Only
// _test files import it: the herald binary never links the NATS server.
package natstest
