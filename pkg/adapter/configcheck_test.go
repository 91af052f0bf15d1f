// SPDX-License-Identifier: Apache-2.0

package adapter

import "testing"

func TestValidBaseURL(t *testing.T) {
	for _, s := range []string{"https://api.example.com", "http://127.0.0.1:8080/base"} {
		if err := ValidBaseURL(s); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	for _, s := range []string{"", "ftp://x", "https://", "https://h/?q=1", "https://h/#f", "https://u:p@h/", "::"} {
		if err := ValidBaseURL(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}
