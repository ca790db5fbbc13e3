// Package webapp embeds the dashboard front end (Vue 3 + Vite + TypeScript,
// sources in this folder) into the Go binary.
//
// The built page, dist/app/, is committed, so that `go run ./cmd/aiot` and
// `go install` serve the real dashboard on a machine with Go alone. After a
// change to the sources, `npm run build` (or `task webapp`) writes it again;
// `task test` rebuilds it and fails when the committed copy differs from what
// the sources build, so it never goes stale unnoticed.
//
// The dashboard service serves FS() at the site root, with index.html at the
// top and the websocket next to it at /ws.
package webapp

import (
	"embed"
	"io/fs"
)

//go:embed all:dist/app
var dist embed.FS

// FS returns the built page's files, rooted so that index.html is at the top.
func FS() fs.FS {
	sub, err := fs.Sub(dist, "dist/app")
	if err != nil {
		// fs.Sub fails only for an invalid path, and "dist/app" is valid.
		panic(err)
	}
	return sub
}
