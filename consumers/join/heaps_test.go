package join

import (
	"container/heap"
	"math/rand/v2"
	"testing"
)

// refHeld is container/heap's view of held outcomes by expiry, the
// reference for heldHeap.
type refHeld []*held

func (h refHeld) Len() int           { return len(h) }
func (h refHeld) Less(i, j int) bool { return h[i].expire < h[j].expire }
func (h refHeld) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *refHeld) Push(x any)        { *h = append(*h, x.(*held)) }
func (h *refHeld) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// TestHeapsPopAsContainerHeap checks that the typed heaps pop the very
// elements container/heap pops, in its order, ties included (many equal
// expiries), under interleaved pushes and pops: the order of the late
// outcomes and emissions must not change with the heap's code.
func TestHeapsPopAsContainerHeap(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var got heldHeap
	var want refHeld
	var cg closeHeap
	for i := range 20000 {
		if r.IntN(3) > 0 || got.Len() == 0 {
			h := &held{expire: int64(r.IntN(50))}
			got.Push(h)
			heap.Push(&want, h)
			cg.Push(&dstate{closeAt: int64(r.IntN(50)), offset: int64(i)})
			continue
		}
		if g, w := got.Pop(), heap.Pop(&want).(*held); g != w {
			t.Fatalf("pop %d: got the element of expiry %d, container/heap pops another of expiry %d", i, g.expire, w.expire)
		}
	}
	prev := cg.Pop()
	for cg.Len() > 0 {
		d := cg.Pop()
		if closesFirst(d, prev) {
			t.Fatalf("closeHeap popped (%d, %d) after (%d, %d)", d.closeAt, d.offset, prev.closeAt, prev.offset)
		}
		prev = d
	}
}
