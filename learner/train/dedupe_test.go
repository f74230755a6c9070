package train

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"
)

// TestInsertDropsHeldIDs: an experience whose id the buffer holds is
// dropped and counted (not inserted, not counted for the rate limiter);
// once the buffer has evicted an id, it is accepted again; over a random
// stream with many re-deliveries the buffer never holds an id twice.
func TestInsertDropsHeldIDs(t *testing.T) {
	cfg := testConfig(1)
	cfg.Replay.Capacity = 300
	cfg.MinBuffer = 100
	tr := mustNew(t, cfg)
	exps := journeys(t, 400, 3, time.Time{})
	for i := range exps {
		exps[i].ID = fmt.Sprint("x", i)
	}
	if !tr.Insert(&exps[0]) || tr.Insert(&exps[0]) || tr.Refill(&exps[0]) {
		t.Fatal("a held id was inserted again")
	}
	if s := tr.Stats(); s.Duplicates != 2 || s.Inserted != 1 || tr.Len() != 1 {
		t.Fatalf("after a duplicate: %+v, len %d", s, tr.Len())
	}
	for i := 1; i <= cfg.Replay.Capacity; i++ {
		tr.Insert(&exps[i])
	}
	if !tr.Insert(&exps[0]) {
		t.Fatal("an evicted id was refused")
	}
	// Random re-deliveries: the held ids are the last Capacity distinct
	// ids inserted; a check against the slots' ids.
	rng := rand.New(rand.NewPCG(5, 6))
	for range 5000 {
		i := rng.IntN(len(exps))
		tr.Insert(&exps[i])
	}
	seen := make(map[string]bool)
	for slot, id := range tr.held.bySlot[:tr.Len()] {
		if seen[id] {
			t.Fatalf("id %s held twice (slot %d)", id, slot)
		}
		seen[id] = true
		if !tr.held.has(id) {
			t.Fatalf("id %s of slot %d not in the set", id, slot)
		}
	}
	if len(tr.held.set) != tr.Len() {
		t.Fatalf("%d ids held for %d items", len(tr.held.set), tr.Len())
	}
	if s := tr.Stats(); s.Duplicates < 100 || s.Inserted+s.Duplicates != int64(5000+cfg.Replay.Capacity+2+2) {
		t.Fatalf("stats %+v", s)
	}
}
