package join

// closeHeap is a binary min-heap of *dstate ordered by closesFirst: container/heap's
// algorithm (the same push and pop order, ties included) without its
// interface calls.
type closeHeap []*dstate

func (h closeHeap) Len() int { return len(h) }

func (h *closeHeap) Push(x *dstate) {
	*h = append(*h, x)
	s := *h
	for j := len(s) - 1; ; {
		i := (j - 1) / 2 // parent
		if i == j || !closesFirst(s[j], s[i]) {
			break
		}
		s[i], s[j] = s[j], s[i]
		j = i
	}
}

// Pop removes and returns the least element; h must not be empty.
func (h *closeHeap) Pop() *dstate {
	s := *h
	n := len(s) - 1
	s[0], s[n] = s[n], s[0]
	for i := 0; ; {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1
		if j2 := j1 + 1; j2 < n && closesFirst(s[j2], s[j1]) {
			j = j2
		}
		if !closesFirst(s[j], s[i]) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	x := s[n]
	s[n] = nil
	*h = s[:n]
	return x
}

// heldHeap is a binary min-heap of *held ordered by expiresFirst: container/heap's
// algorithm (the same push and pop order, ties included) without its
// interface calls.
type heldHeap []*held

func (h heldHeap) Len() int { return len(h) }

func (h *heldHeap) Push(x *held) {
	*h = append(*h, x)
	s := *h
	for j := len(s) - 1; ; {
		i := (j - 1) / 2 // parent
		if i == j || !expiresFirst(s[j], s[i]) {
			break
		}
		s[i], s[j] = s[j], s[i]
		j = i
	}
}

// Pop removes and returns the least element; h must not be empty.
func (h *heldHeap) Pop() *held {
	s := *h
	n := len(s) - 1
	s[0], s[n] = s[n], s[0]
	for i := 0; ; {
		j1 := 2*i + 1
		if j1 >= n || j1 < 0 {
			break
		}
		j := j1
		if j2 := j1 + 1; j2 < n && expiresFirst(s[j2], s[j1]) {
			j = j2
		}
		if !expiresFirst(s[j], s[i]) {
			break
		}
		s[i], s[j] = s[j], s[i]
		i = j
	}
	x := s[n]
	s[n] = nil
	*h = s[:n]
	return x
}

// closesFirst orders open decisions by window end, then offset.
func closesFirst(a, b *dstate) bool {
	if a.closeAt != b.closeAt {
		return a.closeAt < b.closeAt
	}
	return a.offset < b.offset
}

// expiresFirst orders held outcomes by expiry.
func expiresFirst(a, b *held) bool { return a.expire < b.expire }

// recentIDs is a bounded set of the most recent ids added: O(1) add and
// lookup, the oldest forgotten beyond its capacity.
type recentIDs struct {
	ring []string
	next int
	set  map[string]struct{}
}

func newRecentIDs(capacity int) recentIDs {
	return recentIDs{ring: make([]string, capacity), set: make(map[string]struct{}, capacity)}
}

func (r *recentIDs) has(id string) bool { _, ok := r.set[id]; return ok }

func (r *recentIDs) add(id string) {
	if old := r.ring[r.next]; old != "" {
		delete(r.set, old)
	}
	r.ring[r.next] = id
	r.set[id] = struct{}{}
	r.next = (r.next + 1) % len(r.ring)
}
