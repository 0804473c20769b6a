// Package mftest builds models for other packages' tests and benchmarks.
package mftest

import (
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/recsys-dev/recsys/internal/mf"
)

// Random returns a model of n items "item-0" … with f factors drawn from
// N(0, 0.1²), deterministic for a seed, version "bench".
func Random(tb testing.TB, n, f int, seed uint64) *mf.Model {
	tb.Helper()
	rng := rand.New(rand.NewPCG(seed, seed))
	ids := make([]string, n)
	for i := range ids {
		ids[i] = "item-" + strconv.Itoa(i)
	}
	factors := make([]float32, n*f)
	for i := range factors {
		factors[i] = float32(rng.NormFloat64() * 0.1)
	}
	m, err := mf.New(mf.Info{Version: "bench", Hyper: mf.Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 10}}, ids, factors)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}
