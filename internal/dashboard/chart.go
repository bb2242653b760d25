package dashboard

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// series is one stacked part of a bar chart.
type series struct {
	name  string
	class string // CSS class that colours it
	value func(Bucket) int64
}

// Chart geometry, in SVG user units (the SVG scales to its box).
const (
	chartW, chartH = 640, 170
	chartLeft      = 40
	chartBottom    = 22
	chartTop       = 8
)

// barChart draws buckets as stacked bars, inline SVG with a title per bar
// (the browser shows it on hover) and a text alternative, so that it
// needs no script and no external file.
func barChart(label string, buckets []Bucket, hourly bool, parts []series) template.HTML {
	var top int64
	for _, b := range buckets {
		var sum int64
		for _, p := range parts {
			sum += p.value(b)
		}
		top = max(top, sum)
	}
	scale := niceCeil(top)
	plotW := float64(chartW - chartLeft - 4)
	plotH := float64(chartH - chartBottom - chartTop)
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-label="%s">`, chartW, chartH, html.EscapeString(label))
	// Grid: the baseline, the top and, when it is a whole number, the
	// middle, with their values.
	marks := []float64{0, 1}
	if scale%2 == 0 {
		marks = append(marks, 0.5)
	}
	for _, f := range marks {
		y := float64(chartTop) + plotH*(1-f)
		fmt.Fprintf(&sb, `<line class="grid" x1="%d" x2="%d" y1="%.1f" y2="%.1f"/>`, chartLeft, chartW-4, y, y)
		fmt.Fprintf(&sb, `<text class="axis" x="%d" y="%.1f" text-anchor="end">%s</text>`, chartLeft-4, y+4, shortNumber(int64(float64(scale)*f)))
	}
	n := max(len(buckets), 1)
	slot := plotW / float64(n)
	barW := max(slot*0.75, 1)
	for i, b := range buckets {
		x := float64(chartLeft) + slot*float64(i) + (slot-barW)/2
		when := bucketLabel(b.Start, hourly, true)
		var tip []string
		for _, p := range parts {
			tip = append(tip, fmt.Sprintf("%s %d", p.name, p.value(b)))
		}
		fmt.Fprintf(&sb, `<g><title>%s: %s</title>`, html.EscapeString(when), html.EscapeString(strings.Join(tip, ", ")))
		// An invisible full-height bar keeps the hover target usable for
		// empty buckets.
		fmt.Fprintf(&sb, `<rect class="hit" x="%.1f" y="%d" width="%.1f" height="%.1f"/>`, x, chartTop, barW, plotH)
		y := float64(chartTop) + plotH
		for _, p := range parts {
			v := p.value(b)
			if v <= 0 || scale == 0 {
				continue
			}
			h := plotH * float64(v) / float64(scale)
			y -= h
			fmt.Fprintf(&sb, `<rect class="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, p.class, x, y, barW, h)
		}
		sb.WriteString(`</g>`)
		if i == 0 || i == len(buckets)-1 || i == len(buckets)/2 {
			anchor := "middle"
			switch i {
			case 0:
				anchor = "start"
			case len(buckets) - 1:
				anchor = "end"
			}
			tx := x + barW/2
			if anchor == "start" {
				tx = x
			} else if anchor == "end" {
				tx = x + barW
			}
			fmt.Fprintf(&sb, `<text class="axis" x="%.1f" y="%d" text-anchor="%s">%s</text>`, tx, chartH-6, anchor,
				html.EscapeString(bucketLabel(b.Start, hourly, false)))
		}
	}
	sb.WriteString(`</svg>`)
	return template.HTML(sb.String()) // every text in it is escaped above
}

// bucketLabel names a bucket: its hour or its day.
func bucketLabel(t time.Time, hourly, long bool) string {
	t = t.UTC()
	switch {
	case hourly && long:
		return t.Format("Jan 2 15:04") + " UTC"
	case hourly:
		return t.Format("15:04")
	}
	return t.Format("Jan 2")
}

// niceCeil rounds a chart's top up to 1, 2 or 5 times a power of ten.
func niceCeil(v int64) int64 {
	if v <= 0 {
		return 0
	}
	p := int64(1)
	for p*10 <= v {
		p *= 10
	}
	for _, m := range []int64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

// shortNumber writes large counts briefly: 950, 1.2k, 3.4M.
func shortNumber(v int64) string {
	switch {
	case v >= 1_000_000:
		return trimZero(fmt.Sprintf("%.1f", float64(v)/1e6)) + "M"
	case v >= 10_000:
		return fmt.Sprintf("%dk", v/1000)
	case v >= 1000:
		return trimZero(fmt.Sprintf("%.1f", float64(v)/1e3)) + "k"
	}
	return fmt.Sprint(v)
}

func trimZero(s string) string { return strings.TrimSuffix(s, ".0") }
