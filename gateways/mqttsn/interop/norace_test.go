//go:build !race

package interop

// raceEnabled is true under the race detector.
const raceEnabled = false
