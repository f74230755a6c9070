package serve

import (
	"container/list"
	"sync"
	"time"

	"github.com/aelp/aelp/schemas"
)

// deferredSet holds the deferred decisions awaiting activation: at most
// max, each for ttl. A decision activated in time is taken out and
// logged; one that expires is dropped and counted, never logged (the
// join must not learn from an ad that was never shown). Entries are kept
// in insertion order, which is expiry order, so expiring is O(expired).
type deferredSet struct {
	mu    sync.Mutex
	max   int
	ttl   time.Duration
	byID  map[string]*list.Element
	order *list.List // of *deferredEntry, oldest first
}

type deferredEntry struct {
	id      string
	d       *schemas.Decision
	expires time.Time
}

func newDeferredSet(max int, ttl time.Duration) *deferredSet {
	return &deferredSet{max: max, ttl: ttl, byID: make(map[string]*list.Element), order: list.New()}
}

// add holds d; false when the set is full.
func (s *deferredSet) add(d *schemas.Decision, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= s.max {
		return false
	}
	s.byID[d.DecisionID] = s.order.PushBack(&deferredEntry{id: d.DecisionID, d: d, expires: now.Add(s.ttl)})
	return true
}

// take removes and returns the decision id names, if it is held and not
// expired at now.
func (s *deferredSet) take(id string, now time.Time) (*schemas.Decision, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	el, ok := s.byID[id]
	if !ok {
		return nil, false
	}
	e := el.Value.(*deferredEntry)
	if !now.Before(e.expires) {
		return nil, false // expire removes and counts it
	}
	delete(s.byID, id)
	s.order.Remove(el)
	return e.d, true
}

// putBack returns a decision take removed (its log write was refused) with
// its expiry reset from now; false when the set is full again.
func (s *deferredSet) putBack(d *schemas.Decision, now time.Time) bool { return s.add(d, now) }

// expire drops every decision expired at now and returns how many.
func (s *deferredSet) expire(now time.Time) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for el := s.order.Front(); el != nil; el = s.order.Front() {
		e := el.Value.(*deferredEntry)
		if now.Before(e.expires) {
			break
		}
		s.order.Remove(el)
		delete(s.byID, e.id)
		n++
	}
	return n
}

// clear drops every decision and returns how many (at shutdown).
func (s *deferredSet) clear() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.byID)
	s.byID = make(map[string]*list.Element)
	s.order.Init()
	return n
}

// len returns the number held.
func (s *deferredSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.byID)
}
