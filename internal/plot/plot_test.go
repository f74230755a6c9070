package plot

import (
	"bytes"
	"errors"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aelp/aelp/schemas"
)

// fakeMetrics returns n seeded, plausible reports in shuffled order; with
// returns, every other one carries per-segment mean returns.
func fakeMetrics(n int, returns bool, seed uint64) []schemas.TrainingMetrics {
	rng := rand.New(rand.NewPCG(seed, 0))
	t0 := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	ms := make([]schemas.TrainingMetrics, n)
	for i := range ms {
		m := &ms[i]
		m.ExperimentID, m.LearnerID = "exp", "learner-1"
		m.Update = int64(50 * (i + 1))
		m.Timestamp = t0.Add(time.Duration(i) * time.Second)
		m.PolicyLoss = -0.01 + 0.02*rng.Float64()
		m.ValueLoss = 1 / float64(i+1)
		m.ApproxKL = 0.001 * rng.Float64()
		m.CrisisParentRatioInBatch = 0.2 + 0.05*rng.Float64()
		m.ExpectedCrisisRatio = 0.226
		m.CrisisFractionInBuffer = 0.1
		m.ImportanceWeightsMin = 0.3
		m.ImportanceWeightsMax = 1
		m.ImportanceWeightsMean = 0.6 + 0.1*rng.Float64()
		if returns && i%2 == 0 {
			c, r := 2+rng.Float64(), 1+rng.Float64()
			m.MeanReturnCrisis, m.MeanReturnRegular = &c, &r
		}
	}
	rng.Shuffle(n, func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
	return ms
}

func TestPanels(t *testing.T) {
	tests := []struct {
		name       string
		returns    bool
		wantTitles []string
	}{
		{"without returns", false, []string{"Policy loss", "Value loss", "Approx KL", "Crisis share of the batch", "Importance-sampling weights"}},
		{"with returns", true, []string{"Policy loss", "Value loss", "Approx KL", "Crisis share of the batch", "Importance-sampling weights", "Mean episode return"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ms := fakeMetrics(40, tc.returns, 1)
			orig := slices.Clone(ms)
			ps := Panels(ms)
			var titles []string
			for _, p := range ps {
				titles = append(titles, p.Title)
			}
			if !slices.Equal(titles, tc.wantTitles) {
				t.Fatalf("titles = %q, want %q", titles, tc.wantTitles)
			}
			if !slices.EqualFunc(ms, orig, func(a, b schemas.TrainingMetrics) bool { return a.Update == b.Update }) {
				t.Error("Panels reordered its input")
			}
			for _, p := range ps {
				for _, s := range p.Lines {
					if len(s.X) != len(s.Y) {
						t.Fatalf("%s/%s: %d x, %d y", p.Title, s.Name, len(s.X), len(s.Y))
					}
					if !slices.IsSorted(s.X) {
						t.Errorf("%s/%s: x not sorted by update", p.Title, s.Name)
					}
				}
			}
			crisis := ps[3]
			if got, want := crisis.Names(), []string{"measured batch ratio", "expected batch ratio", "buffer fraction"}; !slices.Equal(got, want) {
				t.Errorf("crisis panel names = %q, want %q", got, want)
			}
			if got := crisis.Lines[1]; !got.Dashed || got.Y[0] != 0.226 || len(got.Y) != 40 {
				t.Errorf("expected ratio series = dashed %v, %d points, first %v; want dashed, 40, 0.226", got.Dashed, len(got.Y), got.Y[0])
			}
			is := ps[4]
			if got, want := is.Names(), []string{"weight min–max", "weight mean"}; !slices.Equal(got, want) {
				t.Errorf("IS panel names = %q, want %q", got, want)
			}
			if b := is.Bands[0]; len(b.X) != 40 || b.Lo[0] != 0.3 || b.Hi[0] != 1 {
				t.Errorf("band = %d points lo %v hi %v, want 40 points 0.3..1", len(b.X), b.Lo[0], b.Hi[0])
			}
			if tc.returns {
				ret := ps[5]
				if got, want := ret.Names(), []string{"crisis parents", "regular parents"}; !slices.Equal(got, want) {
					t.Errorf("return panel names = %q, want %q", got, want)
				}
				if n := len(ret.Lines[0].X); n != 20 {
					t.Errorf("crisis return points = %d, want 20 (only records carrying it)", n)
				}
			}
		})
	}
}

func TestPanelsSkipsNonFinite(t *testing.T) {
	ms := fakeMetrics(10, false, 2)
	ms[3].ApproxKL = math.NaN()
	ms[4].ApproxKL = math.Inf(1)
	ms[5].ImportanceWeightsMax = math.NaN()
	ps := Panels(ms)
	if got := len(ps[2].Lines[0].X); got != 8 {
		t.Errorf("approx_kl points = %d, want 8 (NaN and Inf left out)", got)
	}
	if got := len(ps[4].Bands[0].X); got != 9 {
		t.Errorf("band points = %d, want 9", got)
	}
	// Rendering must not fail on them either.
	if err := Render(&bytes.Buffer{}, SVG, ms, Options{}); err != nil {
		t.Fatal(err)
	}
}

func TestRenderSVGHoldsSeriesNames(t *testing.T) {
	ms := fakeMetrics(30, true, 3)
	var buf bytes.Buffer
	if err := Render(&buf, SVG, ms, Options{Title: "experiment exp"}); err != nil {
		t.Fatal(err)
	}
	svg := buf.String()
	for _, p := range Panels(ms) {
		for _, name := range append(p.Names(), p.Title) {
			if !strings.Contains(svg, ">"+name+"<") {
				t.Errorf("svg lacks the text %q", name)
			}
		}
	}
	if !strings.Contains(svg, ">experiment exp<") {
		t.Error("svg lacks the title")
	}
}

func TestWriteFilePNG(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "training.png")
	if err := WriteFile(path, fakeMetrics(25, true, 4), Options{}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode png: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != 12*96 || b.Dy() != 3*336 {
		t.Errorf("image %dx%d, want %dx%d (12 in × 10.5 in at 96 dpi)", b.Dx(), b.Dy(), 12*96, 3*336)
	}
	// Not blank: some pixels differ from the white background.
	colours := map[[4]uint32]bool{}
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			r, g, bl, a := img.At(x, y).RGBA()
			colours[[4]uint32{r, g, bl, a}] = true
		}
	}
	if len(colours) < 5 {
		t.Errorf("image has %d distinct sampled colours, want a drawing", len(colours))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("dir holds %d entries, want only the image (temp file removed)", len(entries))
	}
}

func TestErrors(t *testing.T) {
	if err := Render(&bytes.Buffer{}, PNG, nil, Options{}); !errors.Is(err, ErrNoMetrics) {
		t.Errorf("Render(nil) = %v, want ErrNoMetrics", err)
	}
	if _, err := FormatOf("out.jpg"); err == nil {
		t.Error("FormatOf(.jpg) = nil error")
	}
	for path, want := range map[string]Format{"a.PNG": PNG, "dir/b.svg": SVG} {
		if got, err := FormatOf(path); err != nil || got != want {
			t.Errorf("FormatOf(%q) = %q, %v; want %q", path, got, err, want)
		}
	}
	if err := WriteFile(filepath.Join(t.TempDir(), "x.png"), nil, Options{}); !errors.Is(err, ErrNoMetrics) {
		t.Errorf("WriteFile(nil) = %v, want ErrNoMetrics", err)
	}
}

func BenchmarkRenderPNG(b *testing.B) {
	ms := fakeMetrics(500, true, 5)
	b.ReportAllocs()
	for b.Loop() {
		if err := Render(&bytes.Buffer{}, PNG, ms, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}
