package experiment

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/aelp/aelp/learner"
	"github.com/aelp/aelp/learner/train"
	"github.com/aelp/aelp/producers/sim"
	"github.com/aelp/aelp/schemas"
)

// tinyConfig is an A/B run small enough for a unit test under -race.
func tinyConfig() Config {
	c := DefaultConfig()
	c.Replay.Capacity = 2000
	c.MinBuffer = 300
	c.BatchSize = 64
	c.Updates = 12
	c.Seeds = 3
	c.EvalEpisodes = 1500
	c.CurvePoints = 2
	c.CurveEpisodes = 300
	c.Workers = 2
	return c
}

func TestShortAB(t *testing.T) {
	cfg := tinyConfig()
	res, err := Execute(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IS) != cfg.Seeds || len(res.Uniform) != cfg.Seeds || len(res.Logging) != cfg.Seeds {
		t.Fatalf("got %d/%d/%d runs, want %d per arm and logging", len(res.IS), len(res.Uniform), len(res.Logging), cfg.Seeds)
	}
	wantRows := []string{ArmIS, ArmUniform, "IS − uniform (paired)", "logging (uniform random)", "oracle (exact)"}
	rows := res.Rows()
	if len(rows) != len(wantRows) {
		t.Fatalf("got %d rows, want %d", len(rows), len(wantRows))
	}
	for i, row := range rows {
		if row.Name != wantRows[i] {
			t.Errorf("row %d is %q, want %q", i, row.Name, wantRows[i])
		}
		for c, s := range row.Cells {
			if math.IsNaN(s.Mean) || math.IsInf(s.Mean, 0) {
				t.Errorf("row %q column %q: mean %v not finite", row.Name, ColumnNames[c], s.Mean)
			}
			if !row.Exact && (!s.Finite() || s.HalfWidth < 0 || s.N != cfg.Seeds) {
				t.Errorf("row %q column %q: %+v, want a finite CI over %d seeds", row.Name, ColumnNames[c], s, cfg.Seeds)
			}
		}
	}
	if o := rows[4].Cells[ColCrisisReturn].Mean; !(o > rows[3].Cells[ColCrisisReturn].Mean) {
		t.Errorf("oracle crisis return %v not above the logging policy's %v", o, rows[3].Cells[ColCrisisReturn].Mean)
	}
	for i := range cfg.Seeds {
		is, un := res.IS[i], res.Uniform[i]
		// Same stream, same number of updates: the arms saw the same data.
		if is.Updates != cfg.Updates || un.Updates != cfg.Updates || is.Inserted != un.Inserted || is.Episodes != un.Episodes {
			t.Errorf("seed %d: IS %d updates / %d inserted / %d episodes, uniform %d / %d / %d: want equal, %d updates",
				is.Seed, is.Updates, is.Inserted, is.Episodes, un.Updates, un.Inserted, un.Episodes, cfg.Updates)
		}
		if is.TagPrecision != un.TagPrecision || is.TagRecall != un.TagRecall {
			t.Errorf("seed %d: tags differ between arms (%v/%v vs %v/%v)", is.Seed, is.TagPrecision, is.TagRecall, un.TagPrecision, un.TagRecall)
		}
		if is.EvalSeed != un.EvalSeed || is.EvalSeed == is.Seed {
			t.Errorf("seed %d: eval seeds %d and %d, want equal and different from the training seed", is.Seed, is.EvalSeed, un.EvalSeed)
		}
		// Importance sampling draws tagged crisis items more often.
		if !(is.BatchCrisisShare > un.BatchCrisisShare) {
			t.Errorf("seed %d: IS batch crisis share %v not above uniform's %v", is.Seed, is.BatchCrisisShare, un.BatchCrisisShare)
		}
		if un.WeightMin != 1 || un.WeightMax != 1 || !(is.WeightMin < 1) {
			t.Errorf("seed %d: weights uniform [%v, %v], IS min %v: want uniform all 1 and IS below 1", is.Seed, un.WeightMin, un.WeightMax, is.WeightMin)
		}
		if len(is.Curve) != cfg.CurvePoints+1 || is.Curve[0].Updates != 0 || is.Curve[len(is.Curve)-1].Updates != cfg.Updates {
			t.Errorf("seed %d: curve %+v, want %d points from 0 to %d updates", is.Seed, is.Curve, cfg.CurvePoints+1, cfg.Updates)
		}
	}

	var out bytes.Buffer
	res.Print(&out)
	for _, want := range []string{"without Kafka", "crisis return", ArmIS, ArmUniform, "oracle (exact)", "Reading (IS − uniform"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("printed table lacks %q:\n%s", want, out.String())
		}
	}
	var png bytes.Buffer
	if err := res.WritePNG(&png); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png.Bytes(), []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("WritePNG wrote %d bytes without the PNG signature", png.Len())
	}
}

func TestABDeterministic(t *testing.T) {
	cfg := tinyConfig()
	cfg.Seeds, cfg.Updates, cfg.EvalEpisodes = 2, 4, 300
	a, err := Execute(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Workers = 1 // another schedule, the same results
	b, err := Execute(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.Seeds {
		for _, p := range [][2]Run{{a.IS[i], b.IS[i]}, {a.Uniform[i], b.Uniform[i]}} {
			if p[0].Eval.ValuePerUser != p[1].Eval.ValuePerUser || p[0].Last.PolicyLoss != p[1].Last.PolicyLoss {
				t.Errorf("seed %d: value per user %v vs %v, policy loss %v vs %v: want identical runs",
					p[0].Seed, p[0].Eval.ValuePerUser, p[1].Eval.ValuePerUser, p[0].Last.PolicyLoss, p[1].Last.PolicyLoss)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"one seed", func(c *Config) { c.Seeds = 1 }, "at least 2"},
		{"uniform IS arm", func(c *Config) { c.Replay.Uniform = true }, "Uniform set"},
		{"too many curve points", func(c *Config) { c.Updates, c.CurvePoints = 3, 4 }, "curve points"},
		{"min buffer above capacity", func(c *Config) { c.MinBuffer = c.Replay.Capacity + 1 }, "min buffer"},
		{"bad alpha", func(c *Config) { c.Replay.Alpha = -1 }, "alpha"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Execute(ctx, tinyConfig()); err == nil {
		t.Error("Execute with a cancelled context returned no error")
	}
}

// TestArmTrainsAsTheLearnRole: an A/B arm and the learn role's training
// core (configured by learner.Config with the learn role's defaults, fed
// the arm's tagged experiences through the wire as the learn role reads
// them: encoded, decoded and validated) make the same updates at the same
// points of the stream and end with bit-identical agents, buffers and
// statistics. The A/B measures the learner, not a copy of it.
func TestArmTrainsAsTheLearnRole(t *testing.T) {
	const seed, updates = 3, 12
	cfg := DefaultConfig()
	cfg.PPO = learner.DefaultPPO(cfg.Sim.StateDim, cfg.Sim.NumActions()) // as aelp experiment ab sets it
	cfg = cfg.WithDefaults()
	a, err := newArm(cfg, seed, false)
	if err != nil {
		t.Fatal(err)
	}
	lcfg := learner.Config{ExperimentID: "ab", Fresh: true, Seed: seed}.WithDefaults()
	lt, err := train.New(lcfg.TrainConfig())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lt.Config(), a.tr.Config(); !reflect.DeepEqual(got, want) {
		t.Fatalf("learn role's training config %+v\nA/B arm's %+v", got, want)
	}
	stream, err := sim.New(cfg.Sim, seed, 0)
	if err != nil {
		t.Fatal(err)
	}
	lim := schemas.Limits{StateDim: lcfg.StateDim, NumActions: lcfg.NumActions}
	var wire []byte
	var got schemas.TaggedExperience
	n := 0
	for a.updates < updates {
		stream.RunEpisode(sim.Uniform{N: cfg.Sim.NumActions()}, func(tr *sim.Transition) {
			if t.Failed() {
				return
			}
			a.insert(tr)
			rec := a.te
			n++
			rec.ID, rec.ExperimentID = fmt.Sprintf("ab-%d", n), "ab"
			if wire, err = schemas.MarshalTaggedExperience(wire[:0], &rec); err != nil {
				t.Fatal(err)
			}
			if err := schemas.UnmarshalTaggedExperience(wire, &got); err != nil {
				t.Fatal(err)
			}
			if err := got.Validate(lim); err != nil {
				t.Fatal(err)
			}
			lt.Insert(&got)
			for a.updates < updates && a.tr.Due() {
				if !lt.Due() {
					t.Errorf("experience %d: the arm updates, the learn role's core does not", n)
					return
				}
				if err := a.update(); err != nil {
					t.Fatal(err)
				}
				if _, err := lt.Update(); err != nil {
					t.Fatal(err)
				}
			}
			if a.updates < updates && lt.Due() {
				t.Errorf("experience %d: the learn role's core updates, the arm does not", n)
			}
		})
	}
	as, ls := a.tr.Stats(), lt.Stats()
	if !reflect.DeepEqual(as, ls) {
		t.Errorf("stats differ:\narm   %+v\nlearn %+v", as, ls)
	}
	ab, err := a.tr.Agent().MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	lb, err := lt.Agent().MarshalCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ab, lb) {
		t.Error("the arm's agent and the learn role's agent differ after the same stream")
	}
	if as.Updates != updates || as.Inserted != int64(n) {
		t.Errorf("%d updates on %d experiences, want %d updates on all of them", as.Updates, as.Inserted, updates)
	}
}
