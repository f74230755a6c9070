// Package plot draws a learner's training curves from its TrainingMetrics
// records into one multi-panel PNG or SVG image with gonum/plot: policy
// and value loss, approx KL, the measured against the expected crisis
// share of the batch, the IS weight mean with its min–max range, and the
// mean episode return per segment when the records carry it.
//
// It knows nothing of Kafka: callers read the records (aelp plot reads the
// metrics topic) and hand them over. Panels builds the series so they can
// be checked without rendering.
package plot

import (
	"errors"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aelp/aelp/schemas"
	gplot "gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Series is one named curve: Y against the update step X. Points whose Y
// is not finite are left out.
type Series struct {
	// Name is the legend entry.
	Name string
	// X and Y have the same length.
	X, Y []float64
	// Dashed draws the curve dashed (an expectation beside a measurement).
	Dashed bool
}

// Band is a shaded range between Lo and Hi against X.
type Band struct {
	// Name is the legend entry.
	Name string
	// X, Lo and Hi have the same length.
	X, Lo, Hi []float64
}

// Panel is one plot of the image.
type Panel struct {
	// Title is drawn above the panel; YLabel beside its Y axis.
	Title, YLabel string
	// Bands are drawn first, then Lines on top.
	Bands []Band
	Lines []Series
}

// Names returns the legend entries of the panel, bands first.
func (p Panel) Names() []string {
	var out []string
	for _, b := range p.Bands {
		out = append(out, b.Name)
	}
	for _, l := range p.Lines {
		out = append(out, l.Name)
	}
	return out
}

// ErrNoMetrics is returned when there is nothing to plot.
var ErrNoMetrics = errors.New("plot: no training metrics")

// Panels returns the panels for ms, sorted by update step (then time):
//
//	policy loss; value loss; approx KL;
//	batch crisis ratio: measured (crisis_parent_ratio_in_batch), expected
//	  (expected_crisis_ratio) and the buffer's crisis fraction;
//	IS weights: mean with the min–max range as a band;
//	mean episode return per segment (only when some record carries it).
//
// ms is not modified.
func Panels(ms []schemas.TrainingMetrics) []Panel {
	sorted := make([]*schemas.TrainingMetrics, len(ms))
	for i := range ms {
		sorted[i] = &ms[i]
	}
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Update != sorted[j].Update {
			return sorted[i].Update < sorted[j].Update
		}
		return sorted[i].Timestamp.Before(sorted[j].Timestamp)
	})
	series := func(name string, get func(*schemas.TrainingMetrics) (float64, bool)) Series {
		s := Series{Name: name}
		for _, m := range sorted {
			y, ok := get(m)
			if !ok || math.IsNaN(y) || math.IsInf(y, 0) {
				continue
			}
			s.X = append(s.X, float64(m.Update))
			s.Y = append(s.Y, y)
		}
		return s
	}
	val := func(f func(*schemas.TrainingMetrics) float64) func(*schemas.TrainingMetrics) (float64, bool) {
		return func(m *schemas.TrainingMetrics) (float64, bool) { return f(m), true }
	}
	opt := func(f func(*schemas.TrainingMetrics) *float64) func(*schemas.TrainingMetrics) (float64, bool) {
		return func(m *schemas.TrainingMetrics) (float64, bool) {
			if p := f(m); p != nil {
				return *p, true
			}
			return 0, false
		}
	}
	dashed := func(s Series) Series { s.Dashed = true; return s }
	band := Band{Name: "weight min–max"}
	for _, m := range sorted {
		lo, hi := m.ImportanceWeightsMin, m.ImportanceWeightsMax
		if math.IsNaN(lo) || math.IsInf(lo, 0) || math.IsNaN(hi) || math.IsInf(hi, 0) {
			continue
		}
		band.X = append(band.X, float64(m.Update))
		band.Lo = append(band.Lo, lo)
		band.Hi = append(band.Hi, hi)
	}
	panels := []Panel{
		{Title: "Policy loss", YLabel: "loss", Lines: []Series{
			series("policy loss", val(func(m *schemas.TrainingMetrics) float64 { return m.PolicyLoss }))}},
		{Title: "Value loss", YLabel: "loss", Lines: []Series{
			series("value loss", val(func(m *schemas.TrainingMetrics) float64 { return m.ValueLoss }))}},
		{Title: "Approx KL", YLabel: "KL", Lines: []Series{
			series("approx_kl", val(func(m *schemas.TrainingMetrics) float64 { return m.ApproxKL }))}},
		{Title: "Crisis share of the batch", YLabel: "share", Lines: []Series{
			series("measured batch ratio", val(func(m *schemas.TrainingMetrics) float64 { return m.CrisisParentRatioInBatch })),
			dashed(series("expected batch ratio", val(func(m *schemas.TrainingMetrics) float64 { return m.ExpectedCrisisRatio }))),
			series("buffer fraction", val(func(m *schemas.TrainingMetrics) float64 { return m.CrisisFractionInBuffer }))}},
		{Title: "Importance-sampling weights", YLabel: "weight", Bands: []Band{band}, Lines: []Series{
			series("weight mean", val(func(m *schemas.TrainingMetrics) float64 { return m.ImportanceWeightsMean }))}},
	}
	ret := Panel{Title: "Mean episode return", YLabel: "return", Lines: []Series{
		series("crisis parents", opt(func(m *schemas.TrainingMetrics) *float64 { return m.MeanReturnCrisis })),
		series("regular parents", opt(func(m *schemas.TrainingMetrics) *float64 { return m.MeanReturnRegular }))}}
	if len(ret.Lines[0].X)+len(ret.Lines[1].X) > 0 {
		panels = append(panels, ret)
	}
	return panels
}

// Format is an output image format.
type Format string

// Output formats.
const (
	PNG Format = "png"
	SVG Format = "svg"
)

// FormatOf returns the format named by path's extension (.png or .svg).
func FormatOf(path string) (Format, error) {
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".png":
		return PNG, nil
	case ".svg":
		return SVG, nil
	default:
		return "", fmt.Errorf("output %q: want a .png or .svg file", path)
	}
}

// Options size the image.
type Options struct {
	// Width and Height of the whole image. Defaults 12 × 4 inches per
	// row of two panels.
	Width, Height vg.Length
	// Title is drawn above the panels, e.g. the experiment id.
	Title string
}

// palette are the line colours, in order (Okabe–Ito, colour-blind safe).
var palette = []color.Color{
	color.RGBA{0, 114, 178, 255},
	color.RGBA{213, 94, 0, 255},
	color.RGBA{0, 158, 115, 255},
	color.RGBA{204, 121, 167, 255},
}

// Render draws the panels of ms in a grid of two columns and writes the
// image in format f to w.
func Render(w io.Writer, f Format, ms []schemas.TrainingMetrics, opt Options) error {
	if len(ms) == 0 {
		return ErrNoMetrics
	}
	panels := Panels(ms)
	rows := (len(panels) + 1) / 2
	if opt.Width == 0 {
		opt.Width = 12 * vg.Inch
	}
	if opt.Height == 0 {
		opt.Height = vg.Length(rows) * 3.5 * vg.Inch
	}
	plots := make([]*gplot.Plot, len(panels))
	for i, p := range panels {
		pl, err := build(p)
		if err != nil {
			return err
		}
		plots[i] = pl
	}
	var canvas vg.CanvasWriterTo
	switch f {
	case PNG:
		canvas = vgimg.PngCanvas{Canvas: vgimg.NewWith(vgimg.UseWH(opt.Width, opt.Height), vgimg.UseDPI(96),
			vgimg.UseBackgroundColor(color.White))}
	case SVG:
		canvas = vgsvg.New(opt.Width, opt.Height)
	default:
		return fmt.Errorf("plot: unknown format %q", f)
	}
	dc := draw.New(canvas)
	top := vg.Length(0)
	if opt.Title != "" {
		top = 0.4 * vg.Inch
		fnt := gplot.DefaultFont
		fnt.Size = vg.Points(14)
		sty := draw.TextStyle{Color: color.Black, Font: fnt, XAlign: draw.XCenter, YAlign: draw.YTop,
			Handler: gplot.DefaultTextHandler}
		dc.FillText(sty, vg.Point{X: opt.Width / 2, Y: opt.Height - 0.1*vg.Inch}, opt.Title)
	}
	tiles := draw.Tiles{Rows: rows, Cols: 2, PadTop: top, PadX: 0.3 * vg.Inch, PadY: 0.3 * vg.Inch,
		PadLeft: 0.1 * vg.Inch, PadRight: 0.2 * vg.Inch, PadBottom: 0.1 * vg.Inch}
	for i, pl := range plots {
		pl.Draw(tiles.At(dc, i%2, i/2))
	}
	if _, err := canvas.WriteTo(w); err != nil {
		return fmt.Errorf("plot: write %s: %w", f, err)
	}
	return nil
}

// build turns one panel into a gonum plot.
func build(p Panel) (*gplot.Plot, error) {
	pl := gplot.New()
	pl.Title.Text = p.Title
	pl.X.Label.Text = "update"
	pl.Y.Label.Text = p.YLabel
	pl.Legend.Top = true
	pl.Add(plotter.NewGrid())
	for _, b := range p.Bands {
		if len(b.X) == 0 {
			continue
		}
		// The band's outline: along Hi forwards, back along Lo.
		pts := make(plotter.XYs, 0, 2*len(b.X))
		for i := range b.X {
			pts = append(pts, plotter.XY{X: b.X[i], Y: b.Hi[i]})
		}
		for i := len(b.X) - 1; i >= 0; i-- {
			pts = append(pts, plotter.XY{X: b.X[i], Y: b.Lo[i]})
		}
		poly, err := plotter.NewPolygon(pts)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", b.Name, err)
		}
		poly.Color = color.NRGBA{R: 0, G: 114, B: 178, A: 60}
		poly.LineStyle.Width, poly.LineStyle.Color = 0, color.Transparent
		pl.Add(poly)
		pl.Legend.Add(b.Name, poly)
	}
	for i, s := range p.Lines {
		if len(s.X) == 0 {
			continue
		}
		xys := make(plotter.XYs, len(s.X))
		for j := range s.X {
			xys[j] = plotter.XY{X: s.X[j], Y: s.Y[j]}
		}
		line, err := plotter.NewLine(xys)
		if err != nil {
			return nil, fmt.Errorf("plot %s: %w", s.Name, err)
		}
		line.Color = palette[i%len(palette)]
		line.Width = vg.Points(1.5)
		if s.Dashed {
			line.Dashes = []vg.Length{vg.Points(5), vg.Points(3)}
		}
		pl.Add(line)
		pl.Legend.Add(s.Name, line)
	}
	return pl, nil
}

// WriteFile renders ms to path in the format of its extension, through a
// temporary file renamed into place, so a failed run leaves no partial
// image.
func WriteFile(path string, ms []schemas.TrainingMetrics, opt Options) error {
	f, err := FormatOf(path)
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := Render(tmp, f, ms, opt); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("plot: %w", err)
	}
	return nil
}
