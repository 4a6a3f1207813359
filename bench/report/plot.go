package report

import (
	"errors"
	"fmt"
	"slices"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// Series is one set of values: one per category of a bar chart, or one per
// x of a line plot. A value at or below zero is drawn as missing (no bar,
// no point).
type Series struct {
	Name   string
	Values []float64
}

// Bars saves a PNG at file with one group of horizontal bars per category
// (listed top to bottom) and one bar per series in each group.
func Bars(file, title, xlabel string, categories []string, series []Series) error {
	if len(categories) == 0 || len(series) == 0 {
		return errors.New("report: nothing to plot")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Legend.Top = true
	n := len(categories)
	barWidth := vg.Points(12)
	rowHeight := barWidth * vg.Length(len(series)+1)
	top := 0.0
	for i, s := range series {
		if len(s.Values) != n {
			return fmt.Errorf("report: series %q has %d values for %d categories", s.Name, len(s.Values), n)
		}
		vals := make(plotter.Values, n)
		for j, v := range s.Values {
			vals[n-1-j] = max(v, 0) // the first category at the top
			top = max(top, v)
		}
		b, err := plotter.NewBarChart(vals, barWidth)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		b.Horizontal = true
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = barWidth * vg.Length(float64(len(series)-1)/2-float64(i))
		p.Add(b)
		if len(series) > 1 {
			p.Legend.Add(s.Name, b)
		}
	}
	names := slices.Clone(categories)
	slices.Reverse(names)
	p.NominalY(names...)
	p.X.Min = 0
	if top > 0 {
		p.X.Max = top * 1.25 // room for the legend
	}
	height := vg.Points(80) + rowHeight*vg.Length(n)
	if err := p.Save(7*vg.Inch, max(height, 3*vg.Inch), file); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

// Lines saves a PNG at file with one line of points per series over xs.
func Lines(file, title, xlabel, ylabel string, xs []float64, series []Series) error {
	if len(xs) == 0 || len(series) == 0 {
		return errors.New("report: nothing to plot")
	}
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Legend.Top = true
	top, drawn := 0.0, 0
	for i, s := range series {
		if len(s.Values) != len(xs) {
			return fmt.Errorf("report: series %q has %d values for %d xs", s.Name, len(s.Values), len(xs))
		}
		var pts plotter.XYs
		for j, v := range s.Values {
			if v > 0 {
				pts = append(pts, plotter.XY{X: xs[j], Y: v})
				top = max(top, v)
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, p2, err := plotter.NewLinePoints(pts)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		l.Color, p2.Color, p2.Shape = plotutil.Color(i), plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, p2)
		if len(series) > 1 {
			p.Legend.Add(s.Name, l, p2)
		}
		drawn++
	}
	if drawn == 0 {
		return errors.New("report: no values to plot")
	}
	p.Y.Min, p.Y.Max = 0, top*1.2
	ticks := make([]plot.Tick, len(xs))
	for i, x := range xs {
		ticks[i] = plot.Tick{Value: x, Label: fmt.Sprint(x)}
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	if err := p.Save(6*vg.Inch, 4*vg.Inch, file); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}
