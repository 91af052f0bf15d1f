// SPDX-License-Identifier: Apache-2.0

// Package pbbp2 encodes and decodes the protobuf frames (proto2 message
// pbbp2.Frame) that Feishu/Lark send over the long-connection websocket.
//
// It is hand-written on protowire instead of generated so that herald does
// not depend on the official SDK's deprecated gogo/protobuf stack. The wire
// format follows the SDK's generated code (larksuite/oapi-sdk-go v3.12.0
// ws/pbbp2.pb.go), including two details a generic encoder would get wrong:
// the required fields 1-4 are always emitted, even when zero (the SDK's
// decoder rejects a frame without them), and the optional string fields 6, 7
// and 9 are emitted even when empty. The payload (8) is emitted only when it
// is non-nil.
//
// Both the adapter and its fake server (feishutest) use this package, so a
// frame the fake accepts is a frame the platform accepts.
package pbbp2
