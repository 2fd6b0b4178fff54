package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// Reporter prints measurements as "name: value unit".
type Reporter struct {
	// N is how many calls a latency measurement makes.
	N int
}

// Value prints one measurement.
func (r *Reporter) Value(name string, v float64, unit string) {
	fmt.Printf("%s: %.3f %s\n", name, v, unit)
}

// Ratio prints a/b as "name: x ratio" (e.g. overhead of a path vs its baseline).
func (r *Reporter) Ratio(name string, a, b float64) {
	if b == 0 {
		fmt.Printf("%s: n/a ratio\n", name)
		return
	}
	fmt.Printf("%s: %.3f ratio\n", name, a/b)
}

// Latencies runs fn n times and returns the sorted durations.
func Latencies(n int, fn func() error) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if err := fn(); err != nil {
			return nil, fmt.Errorf("call %d: %w", i, err)
		}
		out = append(out, time.Since(start))
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out, nil
}

// Pct returns the p-th percentile (0..100) of sorted durations, in ms.
func Pct(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return float64(sorted[i]) / float64(time.Millisecond)
}

// ReportLatency prints p50 and p99 of sorted durations under name.
func (r *Reporter) ReportLatency(name string, sorted []time.Duration) {
	r.Value(name+"_p50", Pct(sorted, 50), "ms")
	r.Value(name+"_p99", Pct(sorted, 99), "ms")
}

// Binary returns bin/<name> from $BAY_BIN_DIR (set by `make bench`).
func Binary(name string) (string, error) {
	dir := os.Getenv("BAY_BIN_DIR")
	if dir == "" {
		dir = "bin"
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%s not built (run make build): %w", name, err)
	}
	return p, nil
}

// sortDurations sorts in place, ascending.
func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}
