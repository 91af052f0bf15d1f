// SPDX-License-Identifier: Apache-2.0

package hermes

import "testing"

// Only a chat id herald's adapter sends to as Hermes does becomes home_chat.
func TestHomeChatID(t *testing.T) {
	tests := []struct {
		p, id string
		want  bool
	}{
		{"telegram", "111111111", true},
		{"telegram", "-1001234567890", true},
		{"telegram", "@news", true},
		{"telegram", "@", false},
		{"telegram", "Home", false},
		{"discord", "555555555555555555", true},
		{"discord", "#general", false},
		{"slack", "C0HOMECHAN1", true},
		{"slack", "D012AB3CD", true},
		{"slack", "#general", false},
		{"slack", "U012AB3CD", false}, // a user, not a conversation
		{"feishu", "oc_abc", true},
		{"feishu", "ou_fixture_user_1", false}, // an open_id, not a chat
		{"matrix", "!room:example.org", false},
	}
	for _, tt := range tests {
		if got := homeChatID(tt.p, tt.id); got != tt.want {
			t.Errorf("homeChatID(%q, %q) = %v, want %v", tt.p, tt.id, got, tt.want)
		}
	}
}
