package fsm

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// The name index orders listings and snapshots, so it must agree with a
// plain sorted slice through enough inserts and removes to split and merge
// chunks many times.
func TestSortedSetMatchesModel(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	var s sortedSet
	model := map[string]bool{}
	for i := range 60_000 {
		k := fmt.Sprintf("k%04d", r.IntN(3000))
		if r.IntN(3) == 0 || (i > 40_000 && r.IntN(2) == 0) {
			check(t, "remove "+k, s.remove(k), model[k])
			delete(model, k)
		} else {
			check(t, "insert "+k, s.insert(k), !model[k])
			model[k] = true
		}
		if i%5000 == 0 && !s.wellFormed() {
			t.Fatalf("op %d: malformed", i)
		}
	}
	want := make([]string, 0, len(model))
	for k := range model {
		want = append(want, k)
	}
	slices.Sort(want)
	check(t, "well formed", s.wellFormed(), true)
	check(t, "contents", strings.Join(slices.Collect(s.from("")), ","), strings.Join(want, ","))
	for _, from := range []string{"", "k", "k1", "k15", "k2999", "k3", "z"} {
		i, _ := slices.BinarySearch(want, from)
		check(t, "from "+from, strings.Join(slices.Collect(s.from(from)), ","), strings.Join(want[i:], ","))
	}
}

func TestSortedSetEmpty(t *testing.T) {
	var s sortedSet
	check(t, "remove", s.remove("a"), false)
	check(t, "from", len(slices.Collect(s.from(""))), 0)
	got, more := s.page("", "", 5)
	check(t, "page", len(got), 0)
	check(t, "more", more, false)
	check(t, "well formed", s.wellFormed(), true)
	check(t, "insert", s.insert("a"), true)
	check(t, "remove", s.remove("a"), true)
	check(t, "emptied", len(s.chunks), 0)
}
