package config

import (
	"testing"
	"time"
)

func TestDefault(t *testing.T) {
	tests := []struct {
		name   string
		v, def time.Duration
		want   time.Duration
	}{
		{"zero takes the default", 0, time.Second, time.Second},
		{"set is kept", 2 * time.Second, time.Second, 2 * time.Second},
		{"unlimited is kept", Unlimited, time.Second, Unlimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			Default(&v, tt.def)
			if v != tt.want {
				t.Fatalf("Default(%v, %v) = %v, want %v", tt.v, tt.def, v, tt.want)
			}
		})
	}
}
