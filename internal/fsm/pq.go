package fsm

import "container/heap"

// pq is an indexed binary min-heap for container/heap: setIndex records each
// item's position so that heap.Fix and heap.Remove run in O(log n). Every
// ordering used here is total (ties broken by a unique field), so what the
// heap yields never depends on its shape, and a restored State, whose heaps
// were built differently, answers exactly as the original does.
type pq[T any] struct {
	items    []T
	less     func(a, b T) bool
	setIndex func(item T, i int)
}

var _ heap.Interface = (*pq[*lock])(nil)

func (q *pq[T]) Len() int           { return len(q.items) }
func (q *pq[T]) Less(i, j int) bool { return q.less(q.items[i], q.items[j]) }

func (q *pq[T]) Swap(i, j int) {
	q.items[i], q.items[j] = q.items[j], q.items[i]
	q.setIndex(q.items[i], i)
	q.setIndex(q.items[j], j)
}

func (q *pq[T]) Push(x any) {
	t := x.(T)
	q.setIndex(t, len(q.items))
	q.items = append(q.items, t)
}

func (q *pq[T]) Pop() any {
	n := len(q.items) - 1
	t := q.items[n]
	var zero T
	q.items[n] = zero
	q.items = q.items[:n]
	q.setIndex(t, -1)
	return t
}

// ordered reports whether the heap property holds at every position.
func (q *pq[T]) ordered() bool {
	for i := 1; i < len(q.items); i++ {
		if q.less(q.items[i], q.items[(i-1)/2]) {
			return false
		}
	}
	return true
}
