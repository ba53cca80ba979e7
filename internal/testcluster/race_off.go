//go:build !race

package testcluster

// RaceEnabled reports whether this program was built with the race detector; a test built with
// -race builds the manager binary with it too, reusing the packages already compiled.
const RaceEnabled = false
