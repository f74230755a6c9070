package experiment

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestThreeArmAB runs the A/B with the adaptive arm: three arms on the same
// streams, the adaptive arm's weight within its bounds, the fixed arm's
// constant, and the table's paired rows.
func TestThreeArmAB(t *testing.T) {
	cfg := tinyConfig()
	cfg.AdaptiveArm = true
	cfg.Adaptive.MaxWeight = 8
	cfg.Adaptive.Smoothing = 5
	res, err := Execute(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Adaptive) != cfg.Seeds {
		t.Fatalf("%d adaptive runs, want %d", len(res.Adaptive), cfg.Seeds)
	}
	moved := false
	for i := range cfg.Seeds {
		is, ad := res.IS[i], res.Adaptive[i]
		if ad.Inserted != is.Inserted || ad.Episodes != is.Episodes || ad.Updates != cfg.Updates {
			t.Errorf("seed %d: adaptive %d inserted / %d episodes / %d updates, IS %d / %d: want the same stream", is.Seed,
				ad.Inserted, ad.Episodes, ad.Updates, is.Inserted, is.Episodes)
		}
		if is.CrisisWeightMean != cfg.Replay.CrisisWeight || is.FinalCrisisWeight != cfg.Replay.CrisisWeight {
			t.Errorf("seed %d: fixed arm's weight %v (final %v), want %v throughout", is.Seed, is.CrisisWeightMean, is.FinalCrisisWeight, cfg.Replay.CrisisWeight)
		}
		if !(ad.FinalCrisisWeight >= 1 && ad.FinalCrisisWeight <= 8) || !(ad.FinalSignal > 0) {
			t.Errorf("seed %d: adaptive final weight %v, signal %v: want a weight in [1, 8] and a positive signal", is.Seed, ad.FinalCrisisWeight, ad.FinalSignal)
		}
		moved = moved || ad.FinalCrisisWeight != cfg.Replay.CrisisWeight
	}
	if !moved {
		t.Error("no adaptive run moved its weight")
	}
	var names []string
	for _, r := range res.Rows() {
		names = append(names, r.Name)
	}
	want := []string{ArmIS, ArmUniform, ArmAdaptive, RowISMinusUniform, RowAdaptiveMinusUniform, RowAdaptiveMinusIS,
		"logging (uniform random)", "oracle (exact)"}
	if strings.Join(names, "|") != strings.Join(want, "|") {
		t.Errorf("rows %q, want %q", names, want)
	}
	var out bytes.Buffer
	res.Print(&out)
	for _, s := range []string{"adaptive arm:", RowAdaptiveMinusIS, "adaptive crisis weight  "} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("report lacks %q:\n%s", s, out.String())
		}
	}
	var png bytes.Buffer
	if err := res.WritePNG(&png); err != nil || png.Len() == 0 {
		t.Errorf("WritePNG: %v (%d bytes)", err, png.Len())
	}
}
