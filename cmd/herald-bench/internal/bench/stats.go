// SPDX-License-Identifier: Apache-2.0

package bench

import (
	"math"
	"slices"
	"time"
)

// Summary describes a sample: its size, median, extremes and tail.
type Summary struct {
	N      int
	Median float64
	Min    float64
	Max    float64
	P50    float64 // equals Median
	P99    float64
	Mean   float64
}

// Summarize computes a Summary of xs (which it does not modify). Quantiles
// use the nearest-rank method on the sorted sample, so every reported value
// was observed; the median of an even sample is the mean of the two middle
// values. An empty sample gives the zero Summary.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	var sum float64
	for _, x := range s {
		sum += x
	}
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Summary{
		N: n, Median: med, Min: s[0], Max: s[n-1],
		P50: med, P99: Quantile(s, 0.99), Mean: sum / float64(n),
	}
}

// Quantile returns the nearest-rank q-quantile (0 < q ≤ 1) of a sorted
// sample: the smallest value with at least q·n values at or below it.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(q * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// Seconds converts durations to seconds for Summarize.
func Seconds(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = d.Seconds()
	}
	return out
}

// Ratio is a/b, or NaN when b is zero.
func Ratio(a, b float64) float64 {
	if b == 0 {
		return math.NaN()
	}
	return a / b
}
