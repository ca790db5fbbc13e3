package readiness_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/goaiot/goaiot/internal/readiness"
)

func TestWriteReadRemove(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ready.json")
	want := readiness.Report{Ready: true, PID: 42, TookMS: 1.5, Addrs: map[string]string{"http": "127.0.0.1:1"}}
	if err := readiness.WriteFile(path, want); err != nil {
		t.Fatal(err)
	}
	got, err := readiness.ReadFile(path)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("read %+v, %v; want %+v", got, err, want)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries, want only the ready file (no temporary left)", len(entries))
	}
	for range 2 { // removing twice is fine
		if err := readiness.Remove(path); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("file still there: %v", err)
	}
}

func TestWait(t *testing.T) {
	const wait = 10 * time.Second
	for _, tc := range []struct {
		name    string
		write   []readiness.Report // in order, by another goroutine
		exit    bool
		wantErr error
	}{
		{"written later", []readiness.Report{{Ready: true, PID: 7}}, false, nil},
		{"another process's file first", []readiness.Report{{Ready: true, PID: 8}, {Ready: true, PID: 7}}, false, nil},
		{"exited", nil, true, readiness.ErrExited},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ready.json")
			exited := make(chan struct{})
			go func() {
				for _, r := range tc.write {
					if err := readiness.WriteFile(path, r); err != nil {
						t.Error(err)
					}
				}
				if tc.exit {
					close(exited)
				}
			}()
			ctx, cancel := context.WithTimeout(context.Background(), wait)
			defer cancel()
			r, err := readiness.Wait(ctx, path, 7, exited)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Wait: %v, want %v", err, tc.wantErr)
			}
			if err == nil && r.PID != 7 {
				t.Errorf("report %+v, want pid 7's", r)
			}
		})
	}
}
