// Package sparsetest generates interaction data with planted low-rank
// structure for the tests and benchmarks of the training side: users belong
// to a mixture of two of a few latent clusters, items belong to one cluster
// each, item popularity follows a power law, and a fraction of interactions is
// noise drawn from global popularity. A model that finds the clusters ranks a
// user's held-out items far above what popularity alone can.
package sparsetest

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/recsys-dev/recsys/internal/sparse"
)

// Config shapes a generated data set.
type Config struct {
	Users, Items int
	Clusters     int
	PerUser      int     // mean interactions per user (at least 3 each)
	Zipf         float64 // popularity exponent: item of rank r is drawn ∝ 1/(r+1)^Zipf
	Noise        float64 // fraction of interactions drawn from global popularity
	Seed         uint64
}

// Data is a generated data set. Interaction k is (Triples.Row[k],
// Triples.Col[k]) with strength Triples.Val[k] at Time[k]; each user's
// interactions are contiguous and in increasing time.
type Data struct {
	Users, Items int
	UserCluster  []int // primary cluster of each user
	ItemCluster  []int
	Triples      sparse.Triples
	Time         []int64 // unix seconds
}

// Generate builds a data set; the same Config always gives the same data.
func Generate(cfg Config) *Data {
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed))
	d := &Data{
		Users:       cfg.Users,
		Items:       cfg.Items,
		UserCluster: make([]int, cfg.Users),
		ItemCluster: make([]int, cfg.Items),
	}
	// Popularity by a random rank so popular items spread over clusters.
	rank := rng.Perm(cfg.Items)
	pop := make([]float64, cfg.Items)
	for i := range pop {
		pop[i] = math.Pow(float64(rank[i]+1), -cfg.Zipf)
		d.ItemCluster[i] = rng.IntN(cfg.Clusters)
	}
	global := newSampler(pop, nil)
	byCluster := make([]*sampler, cfg.Clusters)
	for c := range byCluster {
		var members []int32
		for i, ic := range d.ItemCluster {
			if ic == c {
				members = append(members, int32(i))
			}
		}
		w := make([]float64, len(members))
		for k, i := range members {
			w[k] = pop[i]
		}
		byCluster[c] = newSampler(w, members)
		if len(members) == 0 {
			byCluster[c] = global
		}
	}
	n := cfg.Users * cfg.PerUser
	d.Triples = sparse.Triples{Row: make([]int32, 0, n), Col: make([]int32, 0, n), Val: make([]float32, 0, n)}
	d.Time = make([]int64, 0, n)
	const start = 1_700_000_000
	for u := 0; u < cfg.Users; u++ {
		primary := rng.IntN(cfg.Clusters)
		secondary := rng.IntN(cfg.Clusters)
		d.UserCluster[u] = primary
		share := 0.6 + 0.4*rng.Float64() // weight of the primary cluster
		cnt := 3 + int(rng.ExpFloat64()*float64(max(cfg.PerUser-3, 1)))
		t := int64(start + rng.IntN(30*86400))
		for range cnt {
			var item int32
			switch r := rng.Float64(); {
			case r < cfg.Noise:
				item = global.draw(rng)
			case rng.Float64() < share:
				item = byCluster[primary].draw(rng)
			default:
				item = byCluster[secondary].draw(rng)
			}
			val := float32(1) // a view; some are carts or purchases
			if r := rng.Float64(); r < 0.1 {
				val = 5
			} else if r < 0.25 {
				val = 3
			}
			t += 60 + int64(rng.IntN(86400))
			d.Triples.Append(int32(u), item, val)
			d.Time = append(d.Time, t)
		}
	}
	return d
}

// Matrix aggregates the data into a user×item matrix with ids "u<i>" and
// "i<j>".
func (d *Data) Matrix() *sparse.Matrix {
	m, err := sparse.FromTriples(d.Users, d.Items, &d.Triples, IDs("u", d.Users), IDs("i", d.Items))
	if err != nil {
		panic(err) // generated triples are always in range and finite
	}
	return m
}

// IDs returns n ids prefix0, prefix1, ….
func IDs(prefix string, n int) []string {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = prefix + strconv.Itoa(i)
	}
	return ids
}

// sampler draws an index with probability proportional to its weight by a
// binary search over the cumulative weights.
type sampler struct {
	cum    []float64
	values []int32
}

func newSampler(w []float64, values []int32) *sampler {
	s := &sampler{cum: make([]float64, len(w)), values: values}
	var acc float64
	for i, v := range w {
		acc += v
		s.cum[i] = acc
	}
	return s
}

func (s *sampler) draw(rng *rand.Rand) int32 {
	x := rng.Float64() * s.cum[len(s.cum)-1]
	i, _ := slices.BinarySearch(s.cum, x)
	i = min(i, len(s.cum)-1)
	if s.values != nil {
		return s.values[i]
	}
	return int32(i)
}
