package experiment

import (
	"fmt"
	"io"
	"math"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/text"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// writeRow draws plots side by side on one width × height PNG to w.
func writeRow(w io.Writer, row []*plot.Plot, width, height vg.Length) error {
	img := vgimg.New(width, height)
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2, PadBottom: vg.Millimeter * 2,
		PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("write png: %w", err)
	}
	return nil
}

// sweepGrid is one figure of the sweep on the grid: column c a crisis
// weight, row r an (α, β schedule) pair.
type sweepGrid struct{ z [][]float64 }

func (g sweepGrid) Dims() (c, r int)   { return len(g.z[0]), len(g.z) }
func (g sweepGrid) Z(c, r int) float64 { return g.z[r][c] }
func (g sweepGrid) X(c int) float64    { return float64(c) }
func (g sweepGrid) Y(r int) float64    { return float64(r) }

// WritePNG writes the sweep's heat maps as a PNG to w: one panel per
// figure (Δ held-out crisis-parent return, Δ held-out value per user),
// each cell coloured by its mean paired difference from uniform sampling
// (red better, blue worse, grey none; the scale symmetric about 0) and
// labelled with the difference and its 95% half-width, * where the
// interval excludes 0.
func (r SweepResult) WritePNG(w io.Writer) error {
	var row []*plot.Plot
	for _, col := range []int{ColCrisisReturn, ColValuePerUser} {
		p, err := r.heatPanel(col)
		if err != nil {
			return err
		}
		row = append(row, p)
	}
	width := vg.Length(3+1.6*float64(len(r.Config.Weights))) * vg.Inch
	height := vg.Length(1.5+0.9*float64(len(r.Config.Alphas)*len(r.Config.Betas))) * vg.Inch
	return writeRow(w, row, 2*width, height)
}

// SavePNG writes the heat maps (see WritePNG) to the file path.
func (r SweepResult) SavePNG(path string) error { return savePNG(path, r.WritePNG) }

// heatPanel is the heat map of column col.
func (r SweepResult) heatPanel(col int) (*plot.Plot, error) {
	c := r.Config
	nw, nr := len(c.Weights), len(c.Alphas)*len(c.Betas)
	g := sweepGrid{z: make([][]float64, nr)}
	var labels plotter.XYLabels
	span := 0.0
	sums := r.Summaries()
	for k, s := range sums {
		ri, ci := k/nw, k%nw
		if g.z[ri] == nil {
			g.z[ri] = make([]float64, nw)
		}
		d := s.Diff[col]
		label := "uniform\n(baseline)"
		g.z[ri][ci] = 0
		if !s.Cell.Uniform {
			g.z[ri][ci] = d.Mean
			span = math.Max(span, math.Abs(d.Mean))
			label = fmt.Sprintf("%+.2f\n± %.2f", d.Mean, d.HalfWidth)
			if d.Excludes(0) {
				label += " *"
			}
		}
		labels.XYs = append(labels.XYs, plotter.XY{X: float64(ci), Y: float64(ri)})
		labels.Labels = append(labels.Labels, label)
	}
	if span == 0 {
		span = 1
	}
	cm := moreland.SmoothBlueRed()
	cm.SetMin(-span)
	cm.SetMax(span)
	hm := plotter.NewHeatMap(g, cm.Palette(255))
	hm.Min, hm.Max = -span, span
	lb, err := plotter.NewLabels(labels)
	if err != nil {
		return nil, fmt.Errorf("plot labels: %w", err)
	}
	for i := range lb.TextStyle {
		lb.TextStyle[i].XAlign, lb.TextStyle[i].YAlign = text.XCenter, text.YCenter
		lb.TextStyle[i].Font.Size = vg.Points(10)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Δ held-out %s vs uniform (paired, %d seeds)", ColumnNames[col], c.Base.Seeds)
	p.X.Label.Text = "crisis weight"
	p.Y.Label.Text = "α, β schedule"
	var xt, yt []plot.Tick
	for i, w := range c.Weights {
		xt = append(xt, plot.Tick{Value: float64(i), Label: fmt.Sprintf("%g", w)})
	}
	for i, a := range c.Alphas {
		for j, b := range c.Betas {
			yt = append(yt, plot.Tick{Value: float64(i*len(c.Betas) + j), Label: fmt.Sprintf("α %g, β %s", a, betaName(b, c.Base.Replay.AnnealSteps))})
		}
	}
	p.X.Tick.Marker, p.Y.Tick.Marker = plot.ConstantTicks(xt), plot.ConstantTicks(yt)
	p.X.Min, p.X.Max = -0.5, float64(nw)-0.5
	p.Y.Min, p.Y.Max = -0.5, float64(nr)-0.5
	p.Add(hm, lb)
	return p, nil
}
