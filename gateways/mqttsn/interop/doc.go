// Package interop tests goaiot's MQTT-SN gateway against an MQTT-SN client
// that nobody here wrote: energomonitor's bisquitt (its client package).
// It is a module of its own so that bisquitt's old dependencies stay out of
// goaiot's go.mod. Run it from this folder:
//
//	GONOSUMDB=github.com/energomonitor GOFLAGS=-mod=mod go test -race ./...
package interop
