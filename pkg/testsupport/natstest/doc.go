// SPDX-License-Identifier: Apache-2.0

// Package natstest boots in-process NATS servers with JetStream on
// 127.0.0.1 (random ports, a temporary store directory): one server or a
// cluster. It also has a TCP proxy in front of a server that a test can
// blackhole to cut a client off. Tests import it, and so does herald-bench,
// which measures herald on the JetStream backend; the herald binary never
// links the NATS server.
package natstest
