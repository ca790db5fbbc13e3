package linefile

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// collect returns "n:text" of every entry Each passes on.
func collect(t *testing.T, r io.Reader) ([]string, error) {
	t.Helper()
	var got []string
	err := Each(r, func(n int, line string) error {
		got = append(got, fmt.Sprintf("%d:%s", n, line))
		return nil
	})
	return got, err
}

func TestEach(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty", "", ""},
		{"comments and blanks skipped", "# c\n\n  \n  # indented\nA b\n", "5:A b"},
		{"trimmed, numbered", "  a  \r\n\tb\n", "1:a 2:b"},
		{"no final newline", "a\nb", "1:a 2:b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := collect(t, strings.NewReader(tt.in))
			if err != nil || strings.Join(got, " ") != tt.want {
				t.Errorf("Each = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestEachRefuses(t *testing.T) {
	bad := errors.New("bad entry")
	tests := []struct {
		name   string
		in     io.Reader
		fn     func(int, string) error
		is     error
		substr string
	}{
		{"entry error names its line", strings.NewReader("# c\nok\nbad\n"),
			func(_ int, l string) error {
				if l == "bad" {
					return bad
				}
				return nil
			}, bad, "line 3: bad entry"},
		{"line too long", strings.NewReader("a\n" + strings.Repeat("x", MaxLine+1) + "\n"),
			nil, ErrTooLarge, "line 2: over"},
		{"file too large", strings.NewReader(strings.Repeat("# comment line\n", MaxBytes/15+2)),
			nil, ErrTooLarge, "file over"},
		{"reader error", io.MultiReader(strings.NewReader("a\n"), errReader{}),
			nil, errBroken, "read: broken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := tt.fn
			if fn == nil {
				fn = func(int, string) error { return nil }
			}
			err := Each(tt.in, fn)
			if !errors.Is(err, tt.is) || err == nil || !strings.Contains(err.Error(), tt.substr) {
				t.Errorf("Each = %v; want %v containing %q", err, tt.is, tt.substr)
			}
		})
	}
}

func TestLineErrorAs(t *testing.T) {
	err := Each(strings.NewReader("\n\nx\n"), func(int, string) error { return errors.New("no") })
	var le *LineError
	if !errors.As(err, &le) || le.Line != 3 {
		t.Fatalf("Each = %v; want a *LineError on line 3", err)
	}
}

var errBroken = errors.New("broken")

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errBroken }

// FuzzEach: any input yields entries that are trimmed, non-empty, not
// comments, numbered in increasing order, or an error; never a panic.
func FuzzEach(f *testing.F) {
	f.Add("# c\n\na b\n  c  \r\n")
	f.Add("x")
	f.Add(strings.Repeat("y", 100) + "\n#\n")
	f.Fuzz(func(t *testing.T, in string) {
		last := 0
		_ = Each(strings.NewReader(in), func(n int, line string) error {
			if n <= last || line == "" || line != strings.TrimSpace(line) || strings.HasPrefix(line, "#") {
				t.Fatalf("entry %d %q after line %d", n, line, last)
			}
			last = n
			return nil
		})
	})
}
