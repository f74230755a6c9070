//go:build opetuning

package experiment

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/learner/ope"
	"github.com/aelp/aelp/producers/sim"
)

// TestOPETuning is the harness the DR model and DR-CV were chosen on: on
// the seeds of OPE_SEEDS (default 11–15, not the experiment's 1–5), the
// experiment's own training and logging with OPE_REPS (2) × 20,000
// journeys logged under μ, each 20,000 an independent replicate of the
// far snapshot's cells (the last of the experiment's snapshots),
// evaluated with every model of OPE_MODELS (fqe,fqe-linear; model@w sets
// Config.ModelMaxWeight to w, fqe@inf never gates) and 200
// resamples against 50,000 held-out journeys; one line per (seed,
// replicate, model) with each segment's error and interval of PDIS, DR
// and DR-CV (✓: covered). Run it with
//
//	go test -tags opetuning -run TestOPETuning -v -timeout 0 ./app/experiment/
func TestOPETuning(t *testing.T) {
	cfg := DefaultOPEConfig()
	seeds := envSeeds(t, 11, 12, 13, 14, 15)
	reps := 2
	if s := os.Getenv("OPE_REPS"); s != "" {
		var err error
		if reps, err = strconv.Atoi(s); err != nil || reps < 1 {
			t.Fatalf("OPE_REPS %q", s)
		}
	}
	models := []string{ope.ModelFQE, ope.ModelLinear}
	if s := os.Getenv("OPE_MODELS"); s != "" {
		models = strings.Split(s, ",")
	}
	covered := map[string]int{}
	cells := 0
	for _, seed := range seeds {
		snaps, mu := seedSnapshots(t, cfg, seed)
		js, _, err := LogJourneys(cfg.Sim, cfg.Classifier, mu, cfg.Journeys*reps, seed)
		if err != nil {
			t.Fatal(err)
		}
		s := snaps[len(snaps)-1]
		truth, err := sim.Evaluate(cfg.Sim, s.pol, 50_000, sim.HeldOutSeed(seed))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("seed %d snapshot %d: truth all %.3f crisis %.3f regular %.3f", seed, s.updates,
			truth.ValuePerUser, truth.Crisis.MeanReturn, truth.Regular.MeanReturn)
		tv := map[string]float64{SegmentAll: truth.ValuePerUser, SegmentCrisis: truth.Crisis.MeanReturn, SegmentRegular: truth.Regular.MeanReturn}
		for r := range reps {
			part := js[r*cfg.Journeys : (r+1)*cfg.Journeys]
			cells += len(opeSegments)
			for _, m := range models {
				oc := cfg.OPE
				oc.Seed, oc.Resamples, oc.Model = seed, 200, m
				if k := strings.Index(m, "@"); k >= 0 {
					oc.Model = m[:k]
					if oc.ModelMaxWeight, err = strconv.ParseFloat(m[k+1:], 64); err != nil {
						t.Fatalf("OPE_MODELS %q: %v", m, err)
					}
				}
				start := time.Now()
				rep, err := ope.Evaluate(ope.Target{Name: fmt.Sprintf("snapshot %d", s.updates), Policy: s.pol}, part, oc)
				if err != nil {
					t.Fatal(err)
				}
				line := fmt.Sprintf("seed %d rep %d %-10s R² %.3f %4.1fs", seed, r, m, rep.Model.R2, time.Since(start).Seconds())
				for _, sg := range opeSegments {
					seg, _ := rep.Segment(sg.report)
					for _, name := range []string{ope.PDIS, ope.DR, ope.DRCV} {
						e, ok := seg.Estimate(name)
						if !ok {
							continue
						}
						mark := " "
						if e.Lo <= tv[sg.cell] && tv[sg.cell] <= e.Hi {
							mark = "✓"
							covered[m+" "+name]++
						}
						line += fmt.Sprintf(" | %s %s %+.3f [%+.3f, %+.3f] %s", sg.cell, name, e.Value-tv[sg.cell], e.Lo-tv[sg.cell], e.Hi-tv[sg.cell], mark)
					}
				}
				t.Log(line)
			}
		}
		for _, sn := range snaps {
			sn.agent.Close()
		}
	}
	for _, m := range models {
		for _, name := range []string{ope.PDIS, ope.DR, ope.DRCV} {
			t.Logf("%-10s %-5s covers %d of %d cells", m, name, covered[m+" "+name], cells)
		}
	}
}
