package redisconn_test

import (
	"fmt"

	"github.com/recsys-dev/recsys/internal/redisconn"
)

// Keys of one user (here profile's history) share a hash tag, so Redis Cluster keeps them on one
// node; the id is escaped so a '}' in it cannot end the tag early.
func ExampleEscapeTag() {
	fmt.Println("recsys:u:{" + redisconn.EscapeTag("u42") + "}:hist")
	fmt.Println("recsys:u:{" + redisconn.EscapeTag("odd}id") + "}:hist")
	// Output:
	// recsys:u:{u42}:hist
	// recsys:u:{odd%7Did}:hist
}
