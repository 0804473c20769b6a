package mf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	"gonum.org/v1/gonum/mat"
)

func randomModel(t testing.TB, n, f int, seed uint64) *Model {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	ids := make([]string, n)
	factors := make([]float32, n*f)
	for i := range ids {
		ids[i] = "item-" + strconv.Itoa(i)
	}
	for i := range factors {
		factors[i] = float32(rng.NormFloat64() * 0.3)
	}
	info := Info{
		Version:   "v-test",
		TrainedAt: time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC),
		Users:     42,
		Hyper:     Hyperparameters{Factors: f, Regularization: 0.1, Alpha: 10, Iterations: 5},
		Metrics:   map[string]float64{"ndcg@10": 0.25},
	}
	m, err := New(info, ids, factors)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// The fold-in must equal the normal-equation solution computed independently
// with gonum in float64 from the full confidence-weighted system.
func TestFoldInMatchesDenseSolve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		regExp float64
		rows   []int32
		w      []float64
	}{
		{"one item", 0, []int32{3}, []float64{1}},
		{"several items", 0, []int32{0, 5, 9, 17}, []float64{1, 5, 0.25, 3}},
		{"frequency-scaled reg", 1, []int32{0, 5, 9, 17}, []float64{1, 5, 0.25, 3}},
		{"zero weight is still observed", 0, []int32{2, 4}, []float64{0, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, 40, 8, 1)
			m.info.Hyper.RegExponent = tc.regExp
			ws := &Workspace{}
			got, err := m.FoldIn(ws, tc.rows, tc.w)
			if err != nil {
				t.Fatal(err)
			}

			n, f := m.NumItems(), m.Factors()
			y := mat.NewDense(n, f, nil)
			for i := 0; i < n; i++ {
				for j := 0; j < f; j++ {
					y.Set(i, j, float64(m.Vector(int32(i))[j]))
				}
			}
			c := make([]float64, n) // confidence; unobserved = 1
			p := make([]float64, n) // preference
			for i := range c {
				c[i] = 1
			}
			for k, r := range tc.rows {
				c[r] = 1 + m.info.Hyper.Alpha*tc.w[k]
				p[r] = 1
			}
			var a mat.Dense // YᵀCY + λI
			a.Mul(y.T(), mat.NewDense(n, f, scaleRows(y, c)))
			reg := m.info.Hyper.Reg(len(tc.rows))
			for d := 0; d < f; d++ {
				a.Set(d, d, a.At(d, d)+reg)
			}
			cp := make([]float64, n)
			for i := range cp {
				cp[i] = c[i] * p[i]
			}
			var b mat.VecDense
			b.MulVec(y.T(), mat.NewVecDense(n, cp))
			var want mat.VecDense
			if err := want.SolveVec(&a, &b); err != nil {
				t.Fatal(err)
			}
			for d := 0; d < f; d++ {
				if diff := math.Abs(float64(got[d]) - want.AtVec(d)); diff > 1e-4*(1+math.Abs(want.AtVec(d))) {
					t.Errorf("x[%d] = %v, want %v", d, got[d], want.AtVec(d))
				}
			}
		})
	}
}

func scaleRows(y *mat.Dense, c []float64) []float64 {
	n, f := y.Dims()
	out := make([]float64, 0, n*f)
	for i := 0; i < n; i++ {
		for j := 0; j < f; j++ {
			out = append(out, c[i]*y.At(i, j))
		}
	}
	return out
}

// Contributions must be the exact decomposition score_i = Σ_k c_k y_iᵀA⁻¹y_k,
// checked against A⁻¹ computed independently with gonum, and sum to the
// score of the folded-in vector.
func TestContributions(t *testing.T) {
	for _, tc := range []struct {
		name   string
		regExp float64
		rows   []int32
		w      []float64
	}{
		{"one item", 0, []int32{3}, []float64{1}},
		{"several items", 0, []int32{0, 5, 9, 17}, []float64{1, 5, 0.25, 3}},
		{"frequency-scaled reg", 0.5, []int32{0, 5, 9, 17, 21}, []float64{1, 5, 0.25, 3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := randomModel(t, 40, 8, 2)
			m.info.Hyper.RegExponent = tc.regExp
			ws := &Workspace{}
			x, err := m.FoldIn(ws, tc.rows, tc.w)
			if err != nil {
				t.Fatal(err)
			}
			f := m.Factors()
			a := mat.NewDense(f, f, nil)
			a.Copy(mat.NewDense(f, f, m.gram))
			reg := m.info.Hyper.Reg(len(tc.rows))
			for d := 0; d < f; d++ {
				a.Set(d, d, a.At(d, d)+reg)
			}
			vec := func(r int32) *mat.VecDense {
				v := mat.NewVecDense(f, nil)
				for d, y := range m.Vector(r) {
					v.SetVec(d, float64(y))
				}
				return v
			}
			for k, r := range tc.rows {
				c := 1 + m.info.Hyper.Alpha*tc.w[k]
				yk := vec(r)
				var outer mat.Dense
				outer.Outer(c-1, yk, yk)
				a.Add(a, &outer)
			}
			var inv mat.Dense
			if err := inv.Inverse(a); err != nil {
				t.Fatal(err)
			}
			out := make([]float64, len(tc.rows))
			for i := int32(0); i < int32(m.NumItems()); i++ {
				if err := m.Contributions(ws, tc.rows, tc.w, i, out); err != nil {
					t.Fatal(err)
				}
				var sum, score float64
				for d, v := range m.Vector(i) {
					score += float64(v) * float64(x[d])
				}
				var ainvYi mat.VecDense
				ainvYi.MulVec(&inv, vec(i))
				for k, r := range tc.rows {
					want := (1 + m.info.Hyper.Alpha*tc.w[k]) * mat.Dot(&ainvYi, vec(r))
					if math.Abs(out[k]-want) > 1e-9*(1+math.Abs(want)) {
						t.Errorf("item %d, row %d: contribution %v, want %v", i, r, out[k], want)
					}
					sum += out[k]
				}
				if math.Abs(sum-score) > 1e-4*(1+math.Abs(score)) {
					t.Errorf("item %d: contributions sum to %v, score is %v", i, sum, score)
				}
			}
		})
	}
	m := randomModel(t, 10, 4, 1)
	ws := &Workspace{}
	out := make([]float64, 1)
	if _, err := m.FoldIn(ws, []int32{1}, []float64{1}); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(10, func() { _ = m.Contributions(ws, []int32{1}, []float64{1}, 2, out) }); n != 0 {
		t.Errorf("Contributions allocates %v times", n)
	}
	ws = &Workspace{}
	if err := m.Contributions(ws, []int32{1}, []float64{1}, 2, out); !errors.Is(err, ErrNotFolded) {
		t.Errorf("before any FoldIn: got %v, want ErrNotFolded", err)
	}
	if _, err := m.FoldIn(ws, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := m.Contributions(ws, nil, nil, 2, out); !errors.Is(err, ErrNotFolded) {
		t.Errorf("after an empty FoldIn: got %v, want ErrNotFolded", err)
	}
}

func TestFoldInEmptyProfileIsZero(t *testing.T) {
	m := randomModel(t, 10, 4, 1)
	x, err := m.FoldIn(&Workspace{}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range x {
		if v != 0 {
			t.Fatalf("got %v, want zeros", x)
		}
	}
}

func TestScoresAndCosine(t *testing.T) {
	m := randomModel(t, 50, 6, 3)
	x := m.Vector(7)
	got := make([]float32, m.NumItems())
	m.Scores(x, got)
	cos := make([]float32, m.NumItems())
	m.Cosine(7, cos)
	for i := 0; i < m.NumItems(); i++ {
		var want float64
		for d, v := range m.Vector(int32(i)) {
			want += float64(v) * float64(x[d])
		}
		if math.Abs(float64(got[i])-want) > 1e-5 {
			t.Errorf("score[%d] = %v, want %v", i, got[i], want)
		}
		wantCos := want / (float64(m.Norm(int32(i))) * float64(m.Norm(7)))
		if math.Abs(float64(cos[i])-wantCos) > 1e-5 {
			t.Errorf("cosine[%d] = %v, want %v", i, cos[i], wantCos)
		}
	}
	if math.Abs(float64(cos[7])-1) > 1e-5 {
		t.Errorf("self-similarity = %v, want 1", cos[7])
	}
}

func TestScoresBlockMatchesScores(t *testing.T) {
	// Shapes around the kernel's edges: fewer than 4 users, rows left over
	// after the quads, items left over after the groups of 16, several
	// item tiles, one factor, and factors that do not fill a YMM register.
	for _, tc := range []struct{ n, f, k int }{
		{30, 5, 2}, {30, 5, 4}, {1000, 64, 9}, {4133, 64, 32}, {100, 1, 4}, {517, 300, 5}, {16, 8, 4},
	} {
		for _, kern := range scoringKernels() {
			t.Run(fmt.Sprintf("%s/n=%d/f=%d/k=%d", kern.name, tc.n, tc.f, tc.k), func(t *testing.T) {
				m := randomModel(t, tc.n, tc.f, 4)
				xs := make([]float32, 0, tc.k*tc.f)
				for u := range tc.k {
					xs = append(xs, m.Vector(int32(u*7%tc.n))...)
				}
				block := make([]float32, tc.k*tc.n)
				for i := range block {
					block[i] = float32(math.NaN()) // every cell must be written
				}
				m.scoresBlock(xs, tc.k, block, kern.use, kern.width)
				one := make([]float32, tc.n)
				for u := range tc.k {
					m.Scores(xs[u*tc.f:(u+1)*tc.f], one)
					for i, want := range one {
						got := block[u*tc.n+i]
						if !(math.Abs(float64(got-want)) <= 1e-4*(1+math.Abs(float64(want)))) {
							t.Fatalf("user %d item %d: block %v, single %v", u, i, got, want)
						}
					}
				}
			})
		}
	}
}

func TestArtifactRoundTrip(t *testing.T) {
	m := randomModel(t, 25, 4, 5)
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	got, err := Read(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if got.Version() != m.Version() || !got.Info().TrainedAt.Equal(m.Info().TrainedAt) ||
		got.Info().Hyper != m.Info().Hyper || got.Info().Metrics["ndcg@10"] != 0.25 || got.Info().Users != 42 {
		t.Errorf("info: got %+v, want %+v", got.Info(), m.Info())
	}
	for i := int32(0); i < int32(m.NumItems()); i++ {
		if got.ItemID(i) != m.ItemID(i) {
			t.Fatalf("id %d: got %q, want %q", i, got.ItemID(i), m.ItemID(i))
		}
		for d, v := range m.Vector(i) {
			if got.Vector(i)[d] != v {
				t.Fatalf("factor %d,%d: got %v, want %v", i, d, got.Vector(i)[d], v)
			}
		}
	}
}

func TestArtifactRejectsDamage(t *testing.T) {
	m := randomModel(t, 25, 4, 6)
	var buf bytes.Buffer
	if err := Write(&buf, m); err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	hlen := int(binary.LittleEndian.Uint32(good[12:]))
	factorStart := len(good) - 4 - 25*4*4
	mutate := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, tc := range []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorrupt},
		{"bad magic", mutate(func(b []byte) []byte { b[0] = 'X'; return b }), ErrCorrupt},
		{"future format", mutate(func(b []byte) []byte { b[8] = 9; return b }), ErrCorrupt},
		{"truncated header", good[:20], ErrCorrupt},
		{"truncated factors", good[:factorStart+10], ErrCorrupt},
		{"missing checksum", good[:len(good)-4], ErrCorrupt},
		{"flipped factor bit", mutate(func(b []byte) []byte { b[factorStart+5] ^= 0x10; return b }), ErrCorrupt},
		{"flipped id byte", mutate(func(b []byte) []byte { b[16+hlen+8+4] ^= 1; return b }), ErrCorrupt},
		{"trailing garbage", append(append([]byte(nil), good...), 0), ErrCorrupt},
		{"huge header length", mutate(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[12:], 1<<30); return b }), ErrCorrupt},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Read(bytes.NewReader(tc.data))
			if !errors.Is(err, tc.want) {
				t.Fatalf("got model %v, err %v; want %v", got != nil, err, tc.want)
			}
		})
	}
}

func TestNewRejectsInvalid(t *testing.T) {
	hyper := Hyperparameters{Factors: 2, Regularization: 0.1, Alpha: 1}
	nan := float32(math.NaN())
	for _, tc := range []struct {
		name    string
		hyper   Hyperparameters
		ids     []string
		factors []float32
	}{
		{"no items", hyper, nil, nil},
		{"shape mismatch", hyper, []string{"a"}, []float32{1}},
		{"duplicate ids", hyper, []string{"a", "a"}, []float32{1, 2, 3, 4}},
		{"empty id", hyper, []string{""}, []float32{1, 2}},
		{"NaN factor", hyper, []string{"a"}, []float32{1, nan}},
		{"zero regularization", Hyperparameters{Factors: 2, Alpha: 1}, []string{"a"}, []float32{1, 2}},
		{"zero factors", Hyperparameters{Regularization: 1}, []string{"a"}, []float32{}},
		{"unknown confidence", Hyperparameters{Factors: 2, Regularization: 0.1, Alpha: 1, Confidence: "sqrt"}, []string{"a"}, []float32{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(Info{Hyper: tc.hyper}, tc.ids, tc.factors); !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
}
