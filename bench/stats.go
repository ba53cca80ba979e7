package main

import (
	"math"
	"slices"
	"time"
)

// durations summarises a sample of latencies.
type durations []time.Duration

// percentile returns the p-th percentile (0 < p <= 100), nearest rank.
func (d durations) percentile(p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := int(math.Ceil(p/100*float64(len(s)))) - 1
	return s[min(max(rank, 0), len(s)-1)]
}

// max returns the largest value.
func (d durations) max() time.Duration {
	if len(d) == 0 {
		return 0
	}
	return slices.Max(d)
}
