package fsm

import (
	"iter"
	"slices"
	"sort"
)

// chunkMax bounds one chunk of a sortedSet: inserts and deletes move at most
// this many strings, and a split moves one slice header per chunk.
const chunkMax = 512

// sortedSet is an ordered set of strings kept as a list of sorted chunks, so
// that insert and delete cost O(log n + chunkMax) and ascending iteration from
// any key is cheap. It orders lock names and KV keys for listings and for the
// snapshot, whose order must not depend on Go's map iteration.
type sortedSet struct {
	chunks [][]string // each non-empty; concatenated, strictly ascending
	n      int
}

// chunkFor returns the chunk where k is or belongs: the first whose last
// element is >= k, else the last chunk. The set must not be empty.
func (s *sortedSet) chunkFor(k string) int {
	i := sort.Search(len(s.chunks), func(i int) bool {
		c := s.chunks[i]
		return c[len(c)-1] >= k
	})
	return min(i, len(s.chunks)-1)
}

// insert adds k and reports whether it was absent.
func (s *sortedSet) insert(k string) bool {
	if len(s.chunks) == 0 {
		s.chunks = [][]string{make([]string, 1, chunkMax+1)}
		s.chunks[0][0] = k
		s.n = 1
		return true
	}
	ci := s.chunkFor(k)
	i, found := slices.BinarySearch(s.chunks[ci], k)
	if found {
		return false
	}
	s.chunks[ci] = slices.Insert(s.chunks[ci], i, k)
	s.n++
	if len(s.chunks[ci]) > chunkMax {
		c := s.chunks[ci]
		half := len(c) / 2
		right := append(make([]string, 0, chunkMax+1), c[half:]...)
		clear(c[half:])
		s.chunks[ci] = c[:half]
		s.chunks = slices.Insert(s.chunks, ci+1, right)
	}
	return true
}

// remove deletes k and reports whether it was present. A chunk that shrinks
// below a quarter merges with its successor when they fit in one.
func (s *sortedSet) remove(k string) bool {
	if len(s.chunks) == 0 {
		return false
	}
	ci := s.chunkFor(k)
	i, found := slices.BinarySearch(s.chunks[ci], k)
	if !found {
		return false
	}
	c := slices.Delete(s.chunks[ci], i, i+1)
	s.n--
	switch {
	case len(c) == 0:
		s.chunks = slices.Delete(s.chunks, ci, ci+1)
	case len(c) < chunkMax/4 && ci+1 < len(s.chunks) && len(c)+len(s.chunks[ci+1]) <= chunkMax:
		s.chunks[ci] = append(c, s.chunks[ci+1]...)
		s.chunks = slices.Delete(s.chunks, ci+1, ci+2)
	default:
		s.chunks[ci] = c
	}
	return true
}

// from yields the elements >= k in ascending order.
func (s *sortedSet) from(k string) iter.Seq[string] {
	return func(yield func(string) bool) {
		if len(s.chunks) == 0 {
			return
		}
		ci := s.chunkFor(k)
		i, _ := slices.BinarySearch(s.chunks[ci], k)
		for ; ci < len(s.chunks); ci, i = ci+1, 0 {
			for _, e := range s.chunks[ci][i:] {
				if !yield(e) {
					return
				}
			}
		}
	}
}

// page returns up to limit elements that start with prefix and sort after
// startAfter, and whether more such elements exist. A limit <= 0 returns none.
func (s *sortedSet) page(prefix, startAfter string, limit int) ([]string, bool) {
	start := prefix
	if startAfter >= start {
		start = startAfter + "\x00" // the least string above startAfter
	}
	var out []string
	for k := range s.from(start) {
		if len(k) < len(prefix) || k[:len(prefix)] != prefix {
			break // sorted: once past the prefix range, nothing else matches
		}
		if len(out) >= limit {
			return out, true
		}
		out = append(out, k)
	}
	return out, false
}

// wellFormed reports whether chunks are non-empty, strictly ascending and
// hold n elements in all.
func (s *sortedSet) wellFormed() bool {
	total, prev, first := 0, "", true
	for _, c := range s.chunks {
		if len(c) == 0 {
			return false
		}
		for _, e := range c {
			if !first && e <= prev {
				return false
			}
			prev, first = e, false
		}
		total += len(c)
	}
	return total == s.n
}

// clone returns a copy sharing the strings, not the chunks.
func (s *sortedSet) clone() sortedSet {
	c := sortedSet{chunks: make([][]string, len(s.chunks)), n: s.n}
	for i, ch := range s.chunks {
		c.chunks[i] = append(make([]string, 0, chunkMax+1), ch...)
	}
	return c
}
