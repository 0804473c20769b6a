package topk_test

import (
	"fmt"

	"github.com/recsys-dev/recsys/internal/topk"
)

// The K best rows of a scan, best first, holding only K entries.
func Example() {
	scores := []float32{0.1, 0.9, 0.4, 0.7, 0.2}
	h := topk.New(3)
	for row, s := range scores {
		if h.Accepts(s) { // skips the work of a row that cannot enter
			h.Push(int32(row), s)
		}
	}
	for _, e := range h.Sorted(nil) {
		fmt.Println(e.Row, e.Score)
	}
	// Output:
	// 1 0.9
	// 3 0.7
	// 2 0.4
}
