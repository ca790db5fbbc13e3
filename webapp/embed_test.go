package webapp

import (
	"io/fs"
	"strings"
	"testing"
)

func TestFSHasIndex(t *testing.T) {
	fsys := FS()
	b, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	page := string(b)
	if Built() {
		if strings.Contains(page, "was not built") {
			t.Fatal("Built() is true but FS() serves the placeholder")
		}
		// The built page loads its bundle from assets/.
		if !strings.Contains(page, "assets/") {
			t.Errorf("built index.html references no assets/: %.200q", page)
		}
		assets, err := fs.ReadDir(fsys, "assets")
		if err != nil || len(assets) == 0 {
			t.Errorf("built app has no assets: %v", err)
		}
	} else {
		for _, want := range []string{"was not built", "npm ci", "npm run build", "go build ./cmd/aiot"} {
			if !strings.Contains(page, want) {
				t.Errorf("placeholder page lacks %q", want)
			}
		}
	}
	// Whatever is embedded, the other variant's folder is not visible.
	if _, err := fs.Stat(fsys, "placeholder"); err == nil {
		t.Error("FS() is not rooted at the page's folder")
	}
}

func TestFSIsStable(t *testing.T) {
	a, _ := fs.ReadFile(FS(), "index.html")
	b, _ := fs.ReadFile(FS(), "index.html")
	if string(a) != string(b) {
		t.Fatal("FS() changed between calls")
	}
}
