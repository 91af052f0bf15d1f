// SPDX-License-Identifier: Apache-2.0

// Command herald is a systemd-native gateway between chat platforms and an
// AI agent backend.
package main

func main() {}
