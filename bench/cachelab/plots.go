package cachelab

import (
	"fmt"
	"image/color"
	"os"
	"path/filepath"
	"strconv"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Plot files, in OutDir.
const (
	plotPolicies   = "cache-policies.png"
	plotPartitions = "cache-partitions.png"
	plotBalance    = "cache-balance.png"
	plotMoves      = "cache-moves.png"
	plotBytes      = "cache-bytes.png"
)

// series is one line of a line plot.
type series struct {
	name   string
	xs, ys []float64
	dashed bool
}

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	return p
}

// addLines adds each series as a line with points, in its own color.
func addLines(p *plot.Plot, ss []series) error {
	for i, s := range ss {
		xys := make(plotter.XYs, len(s.xs))
		for j := range s.xs {
			xys[j] = plotter.XY{X: s.xs[j], Y: s.ys[j]}
		}
		l, pts, err := plotter.NewLinePoints(xys)
		if err != nil {
			return fmt.Errorf("cachelab: plot %s: %w", s.name, err)
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		pts.Color = plotutil.Color(i)
		pts.Shape = plotutil.Shape(i)
		if s.dashed {
			l.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			pts.Radius = 0
		}
		p.Add(l, pts)
		p.Legend.Add(s.name, l, pts)
	}
	return nil
}

// addBars adds grouped bars: groups[i] holds one value per label. The
// axes get room for the outer bars and, above the tallest, for the legend.
func addBars(p *plot.Plot, names []string, groups [][]float64, labels []string) error {
	w := vg.Points(14)
	top := 0.0
	for _, g := range groups {
		for _, v := range g {
			top = max(top, v)
		}
	}
	for i, g := range groups {
		b, err := plotter.NewBarChart(plotter.Values(g), w)
		if err != nil {
			return fmt.Errorf("cachelab: plot %s: %w", names[i], err)
		}
		b.Color = plotutil.Color(i)
		b.LineStyle.Width = 0
		b.Offset = w * vg.Length(2*i-len(groups)+1) / 2
		p.Add(b)
		p.Legend.Add(names[i], b)
	}
	p.NominalX(labels...)
	p.X.Min, p.X.Max = -0.6, float64(len(labels))-0.4
	p.Y.Min, p.Y.Max = 0, top*1.3
	return nil
}

func save(p *plot.Plot, dir, file string, w, h vg.Length) (string, error) {
	path := filepath.Join(dir, file)
	if err := p.Save(w, h, path); err != nil {
		return "", fmt.Errorf("cachelab: save %s: %w", path, err)
	}
	return path, nil
}

// plot writes every figure and returns their paths.
func (r *results) plot(dir string) ([]string, error) {
	var out []string
	for _, fn := range []func(string) (string, error){r.plotPolicies, r.plotPartitions, r.plotBalance, r.plotMoves, r.plotBytes} {
		path, err := fn(dir)
		if err != nil {
			return nil, err
		}
		out = append(out, path)
	}
	return out, nil
}

func (r *results) plotPolicies(dir string) (string, error) {
	pr := r.policy
	p := newPlot(fmt.Sprintf("Hit ratio against cache memory (Zipf s=%.1f, %d keys)", r.params.zipfS, r.keys),
		"cache memory, share of the working set (log scale)", "hit ratio")
	p.X.Scale = plot.LogScale{}
	var ticks []plot.Tick
	var ss []series
	for i, pol := range pr.Policies {
		s := series{name: pol}
		for _, pt := range pr.Points[pol] {
			s.xs = append(s.xs, pt.Fraction)
			s.ys = append(s.ys, pt.Hit)
			if i == 0 {
				ticks = append(ticks, plot.Tick{Value: pt.Fraction, Label: pct(pt.Fraction)})
			}
		}
		ss = append(ss, s)
	}
	if len(ticks) > 0 {
		ideal := series{name: "no eviction (bound)", dashed: true,
			xs: []float64{ticks[0].Value, ticks[len(ticks)-1].Value}, ys: []float64{pr.Ideal, pr.Ideal}}
		ss = append(ss, ideal)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0, 1
	if err := addLines(p, ss); err != nil {
		return "", err
	}
	p.Legend.Left = false
	p.Legend.Top = false
	return save(p, dir, plotPolicies, 18*vg.Centimeter, 12*vg.Centimeter)
}

func (r *results) plotPartitions(dir string) (string, error) {
	pr := r.part
	var hit, p50, p90, p99 series
	hit.name = "hit ratio"
	p50.name, p90.name, p99.name = "p50", "p90", "p99"
	ticks := []plot.Tick{}
	for _, pt := range pr.Points {
		x := float64(pt.Shards)
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(pt.Shards)})
		hit.xs, hit.ys = append(hit.xs, x), append(hit.ys, pt.Hit)
		p50.xs, p50.ys = append(p50.xs, x), append(p50.ys, ms(pt.P50))
		p90.xs, p90.ys = append(p90.xs, x), append(p90.ys, ms(pt.P90))
		p99.xs, p99.ys = append(p99.xs, x), append(p99.ys, ms(pt.P99))
	}
	left := newPlot("Hit ratio, same total memory", "shards", "hit ratio")
	left.Y.Min, left.Y.Max = 0, 1
	left.X.Tick.Marker = plot.ConstantTicks(ticks)
	if err := addLines(left, []series{hit}); err != nil {
		return "", err
	}
	left.Legend = plot.NewLegend()
	right := newPlot(fmt.Sprintf("Get latency, %d in flight", pr.Workers), "shards", "milliseconds")
	right.Y.Min = 0
	right.X.Tick.Marker = plot.ConstantTicks(ticks)
	if err := addLines(right, []series{p50, p90, p99}); err != nil {
		return "", err
	}
	right.Legend.Left = false
	for _, v := range p99.ys {
		right.Y.Max = max(right.Y.Max, v*1.25)
	}
	w, h := 24*vg.Centimeter, 10*vg.Centimeter
	img := vgimg.New(w, h)
	dc := draw.New(img)
	// The canvas starts transparent: paint it white like plot.Save does.
	dc.SetColor(color.White)
	dc.Fill(dc.Rectangle.Path())
	tiles := draw.Tiles{Rows: 1, Cols: 2, PadX: vg.Millimeter, PadY: vg.Millimeter,
		PadTop: vg.Millimeter, PadBottom: vg.Millimeter, PadLeft: vg.Millimeter, PadRight: vg.Millimeter}
	cs := plot.Align([][]*plot.Plot{{left, right}}, tiles, dc)
	left.Draw(cs[0][0])
	right.Draw(cs[0][1])
	path := filepath.Join(dir, plotPartitions)
	f, err := os.Create(path)
	if err != nil {
		return "", fmt.Errorf("cachelab: %w", err)
	}
	if _, err := (vgimg.PngCanvas{Canvas: img}).WriteTo(f); err != nil {
		f.Close()
		return "", fmt.Errorf("cachelab: write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("cachelab: %w", err)
	}
	return path, nil
}

func (r *results) plotBalance(dir string) (string, error) {
	p := newPlot("Balance across shards (go-redis Ring, mean over address sets)", "shards", "most loaded shard / mean")
	var keys, traffic []float64
	var labels []string
	for _, b := range r.balance.Balance {
		keys = append(keys, b.KeysMax)
		traffic = append(traffic, b.TrafficMax)
		labels = append(labels, strconv.Itoa(b.Shards))
	}
	if err := addBars(p, []string{"keys", "requests"}, [][]float64{keys, traffic}, labels); err != nil {
		return "", err
	}
	return save(p, dir, plotBalance, 14*vg.Centimeter, 10*vg.Centimeter)
}

func (r *results) plotMoves(dir string) (string, error) {
	p := newPlot("Keys that move when a shard joins N", "N (shards before)", "share of keys moved")
	var ring, modn, ringExp, modnExp series
	ring.name, modn.name = "go-redis Ring (rendezvous)", "CRC-32 mod N"
	ringExp.name, modnExp.name = "1/(N+1)", "N/(N+1)"
	ringExp.dashed, modnExp.dashed = true, true
	var ticks []plot.Tick
	for _, m := range r.balance.Moves {
		x := float64(m.From)
		ticks = append(ticks, plot.Tick{Value: x, Label: strconv.Itoa(m.From)})
		ring.xs, ring.ys = append(ring.xs, x), append(ring.ys, m.Ring)
		modn.xs, modn.ys = append(modn.xs, x), append(modn.ys, m.ModN)
		ringExp.xs, ringExp.ys = append(ringExp.xs, x), append(ringExp.ys, m.RingExpected)
		modnExp.xs, modnExp.ys = append(modnExp.xs, x), append(modnExp.ys, m.ModNExpected)
	}
	p.X.Tick.Marker = plot.ConstantTicks(ticks)
	p.Y.Min, p.Y.Max = 0, 1
	if err := addLines(p, []series{ring, modn, ringExp, modnExp}); err != nil {
		return "", err
	}
	p.Legend.Top = false
	p.Legend.Left = false
	p.Legend.YOffs = vg.Centimeter * 2.5
	return save(p, dir, plotMoves, 16*vg.Centimeter, 11*vg.Centimeter)
}

func (r *results) plotBytes(dir string) (string, error) {
	p := newPlot("Bytes per cached entry", "", "bytes")
	var wire, usage []float64
	var labels []string
	for _, s := range r.bytes.Samples {
		wire = append(wire, float64(s.Wire+s.KeyLen))
		usage = append(usage, float64(s.Usage))
		labels = append(labels, s.Label)
	}
	if err := addBars(p, []string{"wire size + key length", "Redis MEMORY USAGE"}, [][]float64{wire, usage}, labels); err != nil {
		return "", err
	}
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = draw.XRight
	p.X.Tick.Label.YAlign = draw.YTop
	return save(p, dir, plotBytes, 20*vg.Centimeter, 12*vg.Centimeter)
}
