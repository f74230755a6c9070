package experiment

import (
	"fmt"
	"image/color"
	"io"
	"math"

	"github.com/aelp/aelp/learner/ope"
	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// estimatorStyles are the estimators drawn, each with its colour and glyph.
var estimatorStyles = []struct {
	name  string
	color color.NRGBA
	shape draw.GlyphDrawer
}{
	{ope.PDIS, color.NRGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}, draw.CircleGlyph{}},
	{ope.WPDIS, color.NRGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}, draw.BoxGlyph{}},
	{ope.DR, color.NRGBA{R: 0xd6, G: 0x27, B: 0x28, A: 0xff}, draw.TriangleGlyph{}},
	{ope.DRValue, color.NRGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff}, draw.PyramidGlyph{}},
	{ope.WDR, color.NRGBA{R: 0x94, G: 0x67, B: 0xbd, A: 0xff}, draw.RingGlyph{}},
	{ope.DRCV, color.NRGBA{R: 0x8c, G: 0x56, B: 0x4b, A: 0xff}, draw.CrossGlyph{}},
}

// estimatePoints are one estimator's cells of a segment: x the truth, y
// the estimate, the error bar its interval.
type estimatePoints struct {
	plotter.XYs
	plotter.YErrors
}

// WritePNG writes estimate against truth as a PNG to w: one panel per
// true segment (all, crisis, regular), one point per (seed, target) cell
// and estimator at x = the target's on-policy value on held-out journeys,
// y = the estimate, with its 95% interval as an error bar, beside the
// line estimate = truth. A point whose bar crosses the line is a covered
// cell.
func (r *OPEResult) WritePNG(w io.Writer) error {
	segs := []string{SegmentAll, SegmentCrisis, SegmentRegular}
	row := make([]*plot.Plot, len(segs))
	for i, seg := range segs {
		p, err := r.truthPlot(seg)
		if err != nil {
			return err
		}
		row[i] = p
	}
	return writeRow(w, row, 15*vg.Inch, 5*vg.Inch)
}

// truthPlot is the panel of one segment.
func (r *OPEResult) truthPlot(seg string) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("segment %s: %d seeds × %d targets", seg, len(r.Seeds), len(r.Config.Snapshots)+2)
	p.X.Label.Text = "on-policy value (held-out journeys)"
	p.Y.Label.Text = "off-policy estimate, 95% interval"
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, st := range estimatorStyles {
		var pts estimatePoints
		for i := range r.Cells {
			c := &r.Cells[i]
			if c.Segment != seg {
				continue
			}
			for _, e := range c.Estimates {
				if e.Estimator != st.name {
					continue
				}
				pts.XYs = append(pts.XYs, plotter.XY{X: c.Truth, Y: e.Value})
				pts.YErrors = append(pts.YErrors, struct{ Low, High float64 }{e.Value - e.Lo, e.Hi - e.Value})
				lo, hi = min(lo, c.Truth), max(hi, c.Truth)
			}
		}
		if len(pts.XYs) == 0 {
			continue
		}
		sc, err := plotter.NewScatter(pts.XYs)
		if err != nil {
			return nil, fmt.Errorf("plot points: %w", err)
		}
		sc.GlyphStyle.Color, sc.GlyphStyle.Shape, sc.GlyphStyle.Radius = st.color, st.shape, vg.Points(3)
		bars, err := plotter.NewYErrorBars(pts)
		if err != nil {
			return nil, fmt.Errorf("plot intervals: %w", err)
		}
		faded := st.color
		faded.A = 0x90
		bars.LineStyle.Color, bars.LineStyle.Width, bars.CapWidth = faded, vg.Points(1), vg.Points(3)
		p.Add(bars, sc)
		p.Legend.Add(st.name, sc)
	}
	if lo <= hi {
		pad := 0.05*(hi-lo) + 1e-9
		diag, err := plotter.NewLine(plotter.XYs{{X: lo - pad, Y: lo - pad}, {X: hi + pad, Y: hi + pad}})
		if err != nil {
			return nil, fmt.Errorf("plot diagonal: %w", err)
		}
		diag.Color = color.NRGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}
		diag.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
		p.Add(diag)
		p.Legend.Add("estimate = truth", diag)
	}
	return p, nil
}

// SavePNG writes the plot of WritePNG to the file path.
func (r *OPEResult) SavePNG(path string) error {
	return savePNG(path, r.WritePNG)
}
