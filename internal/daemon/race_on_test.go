//go:build race

package daemon_test

// raceDetector: the race detector slows these tests several times over.
const raceDetector = true
