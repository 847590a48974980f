package report

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// colors are the systems' bar colors, in Systems order.
var colors = []color.Color{
	color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff},
	color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff},
	color.RGBA{R: 0x2c, G: 0xa0, B: 0x2c, A: 0xff},
}

// WritePNG draws the chart: one panel per case, because the cases' rates differ by orders of
// magnitude and one shared axis would flatten the small ones, each with a bar of median throughput
// per system.
func (r *Report) WritePNG(w io.Writer) error {
	if len(r.Cases) == 0 {
		return fmt.Errorf("report: no cases to chart")
	}
	row := make([]*plot.Plot, len(r.Cases))
	for i, c := range r.Cases {
		p, err := r.panel(c, i == 0)
		if err != nil {
			return err
		}
		row[i] = p
	}
	const panelWidth, height = 4 * vg.Inch, 4 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(panelWidth*vg.Length(len(row)), height), vgimg.UseDPI(96))
	dc := draw.New(img)
	// A white background: the default is transparent, which dark markdown viewers show as black.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: len(row), PadX: vg.Millimeter * 4, PadTop: vg.Millimeter * 2,
		PadBottom: vg.Millimeter * 2, PadLeft: vg.Millimeter * 2, PadRight: vg.Millimeter * 2}
	canvases := plot.Align([][]*plot.Plot{row}, tiles, dc)
	for i, p := range row {
		p.Draw(canvases[0][i])
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(w); err != nil {
		return fmt.Errorf("report: write png: %w", err)
	}
	return nil
}

// panel is case c's bar chart; legend puts the systems' legend on it.
func (r *Report) panel(c Case, legend bool) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = c.String()
	unit := "ops/s"
	for _, res := range r.results(c) {
		unit = res[0].Unit
		break
	}
	p.Y.Label.Text = unit
	p.Y.Tick.Marker = wholeTicks{}
	p.X.Tick.Marker = plot.ConstantTicks(nil)
	top := 0.0
	w := vg.Points(30)
	for i, sys := range Systems {
		v, ran := r.Throughput(c, sys)
		if !ran {
			continue // not run: no bar, no legend entry, rather than a bar of 0
		}
		top = max(top, v)
		bars, err := plotter.NewBarChart(plotter.Values{v}, w)
		if err != nil {
			return nil, fmt.Errorf("report: bars of %s: %w", sys, err)
		}
		bars.Color = colors[i]
		bars.LineStyle.Width = 0
		bars.Offset = w * vg.Length(i-1)
		p.Add(bars)
		if legend {
			p.Legend.Add(sys, bars)
		}
		labels, err := plotter.NewLabels(plotter.XYLabels{
			XYs:    []plotter.XY{{X: 0, Y: v}},
			Labels: []string{fmt.Sprintf("%.0f", v)},
		})
		if err != nil {
			return nil, fmt.Errorf("report: labels of %s: %w", sys, err)
		}
		labels.Offset = vg.Point{X: w*vg.Length(i-1) - w/3, Y: vg.Points(2)}
		p.Add(labels)
	}
	p.Legend.Top = true
	p.X.Min, p.X.Max = -1, 1
	// Headroom above the tallest bar for its label and the legend.
	p.Y.Min, p.Y.Max = 0, max(1, top*1.2)
	return p, nil
}

// wholeTicks are gonum's default ticks labelled as whole numbers: rates of hundreds per second need
// no decimals.
type wholeTicks struct{}

func (wholeTicks) Ticks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = fmt.Sprintf("%.0f", ts[i].Value)
		}
	}
	return ts
}
