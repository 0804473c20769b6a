// Package catalog: PROVISIONAL types only, replaced by the profile branch at merge.
package catalog

import "time"

type Item struct {
	ID, Category string
	Price        float64
	Available    bool
	CreatedAt    time.Time
}
