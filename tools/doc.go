// Package tools pins the developer tools goaiot's tasks use (go-task and
// staticcheck) in a module of their own, so their dependencies stay out of
// the main module. Run them from the repository root with
// `go tool -modfile=tools/go.mod task …`.
package tools
