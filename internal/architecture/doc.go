// Package architecture holds no code: its test keeps the import rules of
// ARCHITECTURE.md (at the repository root) true. It reads the module's
// import graph with `go list -json` (every package's transitive Deps, test
// files excluded) and fails naming the package and the import that breaks
// a rule. Change a rule here and in ARCHITECTURE.md together.
package architecture
