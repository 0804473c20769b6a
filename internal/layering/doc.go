// Package layering holds no code: its test checks the package graph's
// rules, so that a change that breaks them fails in `go test` rather than
// in review. See layering_test.go for the rules.
//
// An interface is declared by the package that uses it, and the check that
// a type implements it (var _ I = (*T)(nil)) sits beside the implementation,
// in the implementing package's interfaces_test.go (an external test
// package), so that no consumer imports a store for the check alone and no
// store imports its consumers.
package layering
