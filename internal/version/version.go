// Package version holds goaiot's one version, set at build time:
//
//	go build -ldflags "-X github.com/goaiot/goaiot/internal/version.Version=1.2.3" ./cmd/aiot
//
// `aiot version` prints it (with the VCS revision), and every NATS micro
// service of goaiot (gateways, queue, dashboard) announces it, so it must
// be a semantic version: micro refuses a service whose version is not.
package version

// Version is goaiot's semantic version; -ldflags -X overrides it.
var Version = "0.1.0"
