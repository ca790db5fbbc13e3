// Package webapp embeds the dashboard front end (Vue 3 + Vite + TypeScript,
// sources in this folder) into the Go binary.
//
// `npm run build` (run in this folder) writes the built page to dist/app/,
// which is git-ignored. A small committed page in dist/placeholder/ stands in
// for it on a fresh clone, so `go build ./...` always works; that page says
// that the front end was not built and how to build it. The Go binary must be
// built again after `npm run build` to pick the app up.
//
// The dashboard service serves FS() at the site root, with index.html at the
// top and the websocket next to it at /ws.
package webapp

import (
	"embed"
	"io/fs"
)

//go:embed all:dist
var dist embed.FS

const (
	appDir         = "dist/app"
	placeholderDir = "dist/placeholder"
)

// Built reports whether the built front end (dist/app/index.html) was
// embedded, rather than the placeholder page.
func Built() bool {
	_, err := fs.Stat(dist, appDir+"/index.html")
	return err == nil
}

// FS returns the files to serve at the site root: the built app when Built()
// is true, otherwise the placeholder page. index.html is at the top in both.
func FS() fs.FS {
	dir := placeholderDir
	if Built() {
		dir = appDir
	}
	sub, err := fs.Sub(dist, dir)
	if err != nil {
		// fs.Sub fails only on an invalid path; both are constants.
		panic("webapp: " + err.Error())
	}
	return sub
}
