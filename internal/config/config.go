// Package config states the one convention of every Config of goaiot's
// gateways and services, and holds its helper.
//
// New(cfg) first fills the defaults, in a method
//
//	func (c *Config) setDefaults()
//
// then checks the whole filled struct, in a method
//
//	func (c *Config) validate() error
//
// and returns the first error. A zero field means its default (said in the
// field's comment). For a limit (a count, a size, a rate), [Unlimited] (-1)
// means no limit where the field's comment says it may; any other negative
// value is refused by validate. A zero duration is its default; a negative
// duration is refused unless the field's comment gives it a meaning.
package config

// Unlimited, as a limit, means no limit (where the field allows it).
const Unlimited = -1

// Default sets *v to def when *v is the zero value.
func Default[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}
