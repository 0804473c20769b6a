// Package doccheck holds no code: its test checks the Markdown
// documentation of the repository (README.md, docs/, the READMEs beside the
// code): every relative link points to a file that exists and, with a
// #fragment, to a heading that exists in it.
package doccheck
