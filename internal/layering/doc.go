// Package layering holds no code: its test checks the package graph's
// rules, so that a change that breaks them fails in `go test` rather than
// in review. See layering_test.go for the rules.
package layering
