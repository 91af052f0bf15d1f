// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"fmt"
	"testing"
)

func TestOwnerRebalancesMinimally(t *testing.T) {
	three := []string{"a", "b", "c"}
	four := []string{"d", "c", "b", "a"} // order does not matter
	count := map[string]int{}
	moved := 0
	for p := 0; p < DefaultPartitions; p++ {
		o3, o4 := Owner(p, three), Owner(p, four)
		count[o3]++
		if o3 != o4 {
			moved++
			if o4 != "d" {
				t.Fatalf("partition %d moved %s -> %s, not to the new member", p, o3, o4)
			}
		}
		if Owner(p, []string{"a", "c"}) == "b" {
			t.Fatal("a member that left still owns a partition")
		}
	}
	for _, m := range three {
		if count[m] < DefaultPartitions/6 {
			t.Fatalf("member %s owns %d of %d partitions: %v", m, count[m], DefaultPartitions, count)
		}
	}
	if moved == 0 || moved > DefaultPartitions/2 {
		t.Fatalf("%d partitions moved when a fourth member joined", moved)
	}
	if Owner(0, nil) != "" {
		t.Fatal("owner without members")
	}
}

func TestPartitionOfSpreads(t *testing.T) {
	seen := map[int]int{}
	for i := 0; i < 6400; i++ {
		p := PartitionOf(fmt.Sprintf("telegram:%d", i), DefaultPartitions)
		if p < 0 || p >= DefaultPartitions {
			t.Fatalf("partition %d out of range", p)
		}
		seen[p]++
	}
	for p := 0; p < DefaultPartitions; p++ {
		if seen[p] < 50 {
			t.Fatalf("partition %d got %d of 6400 conversations", p, seen[p])
		}
	}
}

func TestOwnerOfSpreadsPlatforms(t *testing.T) {
	members := []string{"a", "b", "c"}
	count := map[string]int{}
	for i := 0; i < 300; i++ {
		count[OwnerOf(fmt.Sprintf("telegram-%d", i), members)]++
	}
	for _, m := range members {
		if count[m] < 50 {
			t.Fatalf("member %s owns %d of 300 platforms: %v", m, count[m], count)
		}
	}
	if OwnerOf("x", nil) != "" || OwnerOf("x", []string{"a"}) != "a" {
		t.Fatal("OwnerOf with zero or one member")
	}
}
