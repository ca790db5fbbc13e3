package webapp

import (
	"io/fs"
	"regexp"
	"strings"
	"testing"
)

// TestFSServesTheBuiltPage checks the committed build: index.html at the top,
// and every asset it references embedded beside it.
func TestFSServesTheBuiltPage(t *testing.T) {
	fsys := FS()
	b, err := fs.ReadFile(fsys, "index.html")
	if err != nil {
		t.Fatalf("index.html: %v", err)
	}
	refs := regexp.MustCompile(`(?:src|href)="\./(assets/[^"]+)"`).FindAllStringSubmatch(string(b), -1)
	if len(refs) == 0 {
		t.Fatalf("index.html references no ./assets/ file: %.300q", b)
	}
	for _, r := range refs {
		t.Run(r[1], func(t *testing.T) {
			info, err := fs.Stat(fsys, r[1])
			if err != nil {
				t.Fatalf("referenced by index.html but not embedded: %v", err)
			}
			if info.Size() == 0 {
				t.Fatal("embedded empty")
			}
		})
	}
	if _, err := fs.Stat(fsys, "app"); err == nil || strings.Contains(string(b), "dist/app") {
		t.Error("FS() is not rooted at the page's folder")
	}
}
