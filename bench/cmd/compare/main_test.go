package main

import (
	"slices"
	"testing"
	"time"
)

func TestRotate(t *testing.T) {
	s := []string{"dlock", "etcd", "zookeeper"}
	tests := []struct {
		give int
		want []string
	}{
		{0, []string{"dlock", "etcd", "zookeeper"}},
		{1, []string{"etcd", "zookeeper", "dlock"}},
		{2, []string{"zookeeper", "dlock", "etcd"}},
		{3, []string{"dlock", "etcd", "zookeeper"}},
	}
	for _, tt := range tests {
		if got := rotate(s, tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("rotate(%d) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if s[0] != "dlock" {
		t.Errorf("rotate changed its input: %v", s)
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		name    string
		give    []string
		wantErr bool
		check   func(options) bool
	}{
		{name: "dlock binary required", give: nil, wantErr: true},
		{name: "unknown system", give: []string{"-dlock", "x", "-systems", "dlock,consul"}, wantErr: true},
		{name: "quick", give: []string{"-dlock", "x", "-quick"}, check: func(o options) bool {
			return o.rounds == 1 && o.duration == 3*time.Second && len(o.systems) == 3
		}},
		{name: "defaults", give: []string{"-dlock", "x"}, check: func(o options) bool {
			return o.rounds == 3 && o.duration == 10*time.Second && o.out == "docs/benchmarks.md" && o.dataParent != ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := parseFlags(tt.give)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseFlags(%v) error %v, want error %v", tt.give, err, tt.wantErr)
			}
			if tt.check != nil && !tt.check(o) {
				t.Errorf("parseFlags(%v) = %+v", tt.give, o)
			}
		})
	}
}

func TestKillAt(t *testing.T) {
	if got, want := killAt(20*time.Second), 6667*time.Millisecond; got != want {
		t.Errorf("killAt(20s) = %s, want %s", got, want)
	}
}
