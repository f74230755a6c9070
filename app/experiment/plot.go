package experiment

import (
	"fmt"
	"image/color"
	"io"
	"os"

	"github.com/aelp/aelp/producers/sim"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

var (
	colorIS      = color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}
	colorUniform = color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}
	colorLogging = color.NRGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
	colorOracle  = color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}
	colorAdapt   = color.NRGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}
)

// bandStyle is one arm's curve in curvePlot.
type bandStyle struct {
	name string
	s    []Summary
	c    color.NRGBA
}

// WritePNG writes the learning curves as a PNG to w: two panels, the
// held-out crisis-parent return and the held-out value per user against
// PPO updates, each arm's mean over seeds with its 95% band (the adaptive
// arm's too, when run), beside the logging policy (mean over seeds) and
// the oracle.
func (r Result) WritePNG(w io.Writer) error {
	is, un := Band(r.IS), Band(r.Uniform)
	crisis := []bandStyle{{ArmUniform, un.CrisisReturn, colorUniform}, {ArmIS, is.CrisisReturn, colorIS}}
	value := []bandStyle{{ArmUniform, un.ValuePerUser, colorUniform}, {ArmIS, is.ValuePerUser, colorIS}}
	if r.Adaptive != nil {
		ad := Band(r.Adaptive)
		crisis = append(crisis, bandStyle{ArmAdaptive, ad.CrisisReturn, colorAdapt})
		value = append(value, bandStyle{ArmAdaptive, ad.ValuePerUser, colorAdapt})
	}
	logCrisis := Summarize(column(r.Logging, func(e sim.EvalReport) float64 { return e.Crisis.MeanReturn })).Mean
	logValue := Summarize(column(r.Logging, func(e sim.EvalReport) float64 { return e.ValuePerUser })).Mean
	left, err := curvePlot("held-out crisis-parent return", is.Updates, crisis, logCrisis, r.Oracle.Crisis.AdaptiveReturn)
	if err != nil {
		return err
	}
	right, err := curvePlot("held-out value per user", un.Updates, value, logValue, r.Oracle.AdaptiveValuePerUser)
	if err != nil {
		return err
	}
	return writeRow(w, []*plot.Plot{left, right}, 12*vg.Inch, 4.5*vg.Inch)
}

// SavePNG writes the learning curves (see WritePNG) to the file path.
func (r Result) SavePNG(path string) error {
	return savePNG(path, r.WritePNG)
}

// savePNG writes the plot write draws to the file path.
func savePNG(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("save plot: %w", err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("save plot %s: %w", path, err)
	}
	return nil
}

// curvePlot draws the arms' mean curves with 95% bands and two reference
// lines.
func curvePlot(title string, xs []int, arms []bandStyle, logging, oracle float64) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = "PPO updates"
	p.Y.Label.Text = "mean journey return"
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	for _, arm := range arms {
		mean := make(plotter.XYs, len(xs))
		poly := make(plotter.XYs, 0, 2*len(xs))
		for i, x := range xs {
			mean[i] = plotter.XY{X: float64(x), Y: arm.s[i].Mean}
			lo := arm.s[i].Lo()
			if !arm.s[i].Finite() {
				lo = arm.s[i].Mean
			}
			poly = append(poly, plotter.XY{X: float64(x), Y: lo})
		}
		for i := len(xs) - 1; i >= 0; i-- {
			hi := arm.s[i].Hi()
			if !arm.s[i].Finite() {
				hi = arm.s[i].Mean
			}
			poly = append(poly, plotter.XY{X: float64(xs[i]), Y: hi})
		}
		band, err := plotter.NewPolygon(poly)
		if err != nil {
			return nil, fmt.Errorf("plot band: %w", err)
		}
		fill := arm.c
		fill.A = 0x40
		band.Color = fill
		band.LineStyle.Width = 0
		line, err := plotter.NewLine(mean)
		if err != nil {
			return nil, fmt.Errorf("plot line: %w", err)
		}
		line.Color = arm.c
		line.Width = vg.Points(2)
		p.Add(band, line)
		p.Legend.Add(arm.name+" (mean, 95% band)", line)
	}
	if len(xs) > 0 {
		for _, ref := range []struct {
			name string
			y    float64
			c    color.NRGBA
		}{{"logging policy (uniform)", logging, colorLogging}, {"oracle (exact)", oracle, colorOracle}} {
			l, err := plotter.NewLine(plotter.XYs{{X: float64(xs[0]), Y: ref.y}, {X: float64(xs[len(xs)-1]), Y: ref.y}})
			if err != nil {
				return nil, fmt.Errorf("plot reference: %w", err)
			}
			l.Color = ref.c
			l.Width = vg.Points(1.5)
			l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			p.Add(l)
			p.Legend.Add(ref.name, l)
		}
	}
	return p, nil
}
