// SPDX-License-Identifier: Apache-2.0

package cluster

import (
	"encoding/binary"
	"hash/fnv"
)

// DefaultPartitions is the number of partitions conversations hash to.
// It is fixed for the life of a cluster: changing it moves conversations.
const DefaultPartitions = 64

// PartitionOf maps a conversation key to one of n partitions.
func PartitionOf(conversation string, n int) int {
	h := fnv.New64a()
	h.Write([]byte(conversation))
	return int(h.Sum64() % uint64(n))
}

// Owner is the member with the highest rendezvous weight for partition p,
// or "" with no members. Every node computes the same owner from the same
// member list, and when a member joins or leaves only the partitions it
// wins or held move.
func Owner(p int, members []string) string {
	var best string
	var bestW uint64
	for _, m := range members {
		if w := weight(p, m); best == "" || w > bestW || (w == bestW && m > best) {
			best, bestW = m, w
		}
	}
	return best
}

// OwnerOf is Owner for a named resource, such as a platform instance: the
// member with the highest rendezvous weight for name, or "" with no members.
func OwnerOf(name string, members []string) string {
	var best string
	var bestW uint64
	for _, m := range members {
		h := fnv.New64a()
		h.Write([]byte(m))
		h.Write([]byte{0})
		h.Write([]byte(name))
		if w := mix(h.Sum64()); best == "" || w > bestW || (w == bestW && m > best) {
			best, bestW = m, w
		}
	}
	return best
}

func weight(p int, member string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(member))
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(p))
	h.Write(b[:])
	return mix(h.Sum64())
}

// mix is the splitmix64 finalizer: FNV's low bits alone spread poorly.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
