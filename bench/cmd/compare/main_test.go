package main

import (
	"slices"
	"testing"
	"time"
)

func TestOrder(t *testing.T) {
	s := []string{"dlock", "etcd", "zookeeper"}
	tests := []struct {
		give int
		want []string
	}{
		{0, []string{"dlock", "etcd", "zookeeper"}},
		{1, []string{"dlock", "zookeeper", "etcd"}},
		{2, []string{"zookeeper", "dlock", "etcd"}},
		{3, []string{"zookeeper", "etcd", "dlock"}},
	}
	for _, tt := range tests {
		if got := order(s, tt.give); !slices.Equal(got, tt.want) {
			t.Errorf("order(%d) = %v, want %v", tt.give, got, tt.want)
		}
	}
	if s[0] != "dlock" {
		t.Errorf("order changed its input: %v", s)
	}
}

// With two systems each runs first in every other case.
func TestOrderOfTwoAlternates(t *testing.T) {
	s := []string{"dlock", "etcd"}
	for k, want := range [][]string{{"dlock", "etcd"}, {"etcd", "dlock"}, {"dlock", "etcd"}, {"etcd", "dlock"}} {
		if got := order(s, k); !slices.Equal(got, want) {
			t.Errorf("order(%v, %d) = %v, want %v", s, k, got, want)
		}
	}
}

// Over the benchmark's cases each system follows each other system, so none always inherits the same
// predecessor's leftovers.
func TestOrderVariesPredecessor(t *testing.T) {
	s := []string{"dlock", "etcd", "zookeeper"}
	follows := map[[2]string]bool{}
	for k := range 4 {
		o := order(s, k)
		for i := 1; i < len(o); i++ {
			follows[[2]string{o[i-1], o[i]}] = true
		}
	}
	if len(follows) != 6 {
		t.Errorf("in 4 cases the systems follow each other in %d ways, want all 6: %v", len(follows), follows)
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
		{name: "ttl past ZooKeeper's sessions", give: []string{"-dlock", "x", "-ttl", "2h"}, wantErr: true},
		{name: "quick keeps explicit flags", give: []string{"-dlock", "x", "-quick", "-rounds", "2", "-duration", "5s"}, check: func(o options) bool {
			return o.rounds == 2 && o.duration == 5*time.Second && o.warmup == time.Second
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
