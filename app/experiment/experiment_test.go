package experiment

import (
	"bytes"
	"context"
	"math"
	"strings"
	"testing"
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
