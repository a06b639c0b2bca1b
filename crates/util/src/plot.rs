//! Charts as SVG strings, in one copy: line charts of series over steps, grouped bar charts,
//! histograms, and figures of several such panels under one title.
//!
//! Drawn with plotters' SVG backend without its font feature: text goes into the SVG as
//! `<text>` elements (the viewer's fonts render them) and label sizes are estimated, so no
//! system font is read and drawing works offline. Series take their colours from [`PALETTE`] in
//! order; the legend lists the series that have a name.

use plotters::chart::{MeshStyle, SeriesAnno};
use plotters::coord::{CoordTranslate, Shift};
use plotters::prelude::*;

use crate::error::{Error, Result};

/// Series colours, in order (matplotlib's `tab10`): blue, red, green, orange, purple, brown,
/// pink, grey, olive, cyan.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// Height of a figure's title band above its panels, in pixels.
const TITLE_BAND: u32 = 40;

fn color(i: usize) -> RGBColor {
    let (r, g, b) = PALETTE[i % PALETTE.len()];
    RGBColor(r, g, b)
}

fn plot_err(e: impl std::fmt::Display) -> Error {
    Error::Plot(e.to_string())
}

/// One line of a line chart: `(x, y)` points in drawing order (non-finite ones are skipped).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend label (empty: not in the legend).
    pub name: String,
    /// The points.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A named line.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Series {
            name: name.into(),
            points,
        }
    }
}

/// One bar per category (grouped bar chart) or per bin (histogram); `None` draws no bar.
#[derive(Debug, Clone, PartialEq)]
pub struct Bars {
    /// Legend label (empty: not in the legend).
    pub name: String,
    /// The bar heights.
    pub values: Vec<Option<f64>>,
}

impl Bars {
    /// A bar for every value.
    pub fn new(name: impl Into<String>, values: impl IntoIterator<Item = f64>) -> Self {
        Bars::partial(name, values.into_iter().map(Some).collect())
    }

    /// Bars where a value is given; gaps where it is `None`.
    pub fn partial(name: impl Into<String>, values: Vec<Option<f64>>) -> Self {
        Bars {
            name: name.into(),
            values,
        }
    }
}

/// Where the legend goes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Legend {
    /// Top left corner (the default).
    #[default]
    UpperLeft,
    /// Top, centred.
    UpperMiddle,
    /// Top right corner.
    UpperRight,
    /// No legend.
    Hidden,
}

/// What a chart draws.
#[derive(Debug, Clone, PartialEq)]
enum Body {
    Lines(Vec<Series>),
    Bars {
        categories: Vec<String>,
        bars: Vec<Bars>,
    },
    Histogram {
        lo: f64,
        hi: f64,
        bars: Vec<Bars>,
        marker: Option<f64>,
    },
}

/// One chart: a title, axis labels and its series. Draw it alone with [`Chart::svg`], or with
/// others under one title with [`panels_svg`].
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    legend: Legend,
    y_max: Option<f64>,
    body: Body,
}

impl Chart {
    fn with(title: &str, x_label: &str, y_label: &str, body: Body) -> Self {
        Chart {
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            legend: Legend::default(),
            y_max: None,
            body,
        }
    }

    /// Lines over a shared x axis (e.g. metrics against the training step). The x range is the
    /// data's; the y range the data's with 8 % padding.
    pub fn lines(title: &str, x_label: &str, y_label: &str, series: Vec<Series>) -> Self {
        Chart::with(title, x_label, y_label, Body::Lines(series))
    }

    /// A grouped bar chart: per category, one bar of each [`Bars`] (its `values[i]` belongs to
    /// `categories[i]`), the category names under the groups. The y axis starts at 0.
    pub fn bars(title: &str, y_label: &str, categories: Vec<String>, bars: Vec<Bars>) -> Self {
        Chart::with(title, "", y_label, Body::Bars { categories, bars })
    }

    /// A histogram of equal bins over `[lo, hi]`: the bin count is the length of each
    /// [`Bars`]' values; several series overlay with translucent colours.
    pub fn histogram(
        title: &str,
        x_label: &str,
        y_label: &str,
        (lo, hi): (f64, f64),
        bars: Vec<Bars>,
    ) -> Self {
        let body = Body::Histogram {
            lo,
            hi,
            bars,
            marker: None,
        };
        Chart::with(title, x_label, y_label, body)
    }

    /// Puts the legend at `legend`.
    #[must_use]
    pub fn legend(mut self, legend: Legend) -> Self {
        self.legend = legend;
        self
    }

    /// Fixes the top of the y axis (bar charts and histograms; bars above it are cut at it).
    #[must_use]
    pub fn y_max(mut self, y_max: f64) -> Self {
        self.y_max = Some(y_max);
        self
    }

    /// Histograms: a vertical red line at `x` (e.g. zero), when it lies inside the range.
    #[must_use]
    pub fn marker_x(mut self, x: f64) -> Self {
        if let Body::Histogram { marker, .. } = &mut self.body {
            *marker = Some(x);
        }
        self
    }

    /// The chart alone, `width` × `height` pixels, its title as the caption.
    ///
    /// # Errors
    /// [`Error::Plot`] for a histogram whose series differ in bin count or an empty or
    /// non-finite bin range, or when drawing fails.
    pub fn svg(&self, (width, height): (u32, u32)) -> Result<String> {
        self.check()?;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (width, height)).into_drawing_area();
            root.fill(&WHITE).map_err(plot_err)?;
            self.draw(&root, 20)?;
            root.present().map_err(plot_err)?;
        }
        Ok(svg)
    }

    fn check(&self) -> Result<()> {
        if let Body::Histogram { lo, hi, bars, .. } = &self.body {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::Plot(format!(
                    "histogram `{}`: bin range [{lo}, {hi}] is empty or not finite",
                    self.title
                )));
            }
            if let Some(b) = bars.iter().find(|b| b.values.len() != bars[0].values.len()) {
                return Err(Error::Plot(format!(
                    "histogram `{}`: series `{}` has {} bins, `{}` has {}",
                    self.title,
                    b.name,
                    b.values.len(),
                    bars[0].name,
                    bars[0].values.len()
                )));
            }
        }
        Ok(())
    }

    fn named(&self) -> bool {
        self.legend != Legend::Hidden
            && match &self.body {
                Body::Lines(s) => s.iter().any(|s| !s.name.is_empty()),
                Body::Bars { bars, .. } | Body::Histogram { bars, .. } => {
                    bars.iter().any(|b| !b.name.is_empty())
                }
            }
    }

    /// The top of the y axis for bars: `y_max`, else the largest bar plus `headroom`.
    fn bar_top(&self, bars: &[Bars], headroom: f64) -> f64 {
        self.y_max.unwrap_or_else(|| {
            let top = bars
                .iter()
                .flat_map(|b| b.values.iter().flatten())
                .filter(|v| v.is_finite())
                .fold(0.0f64, |a, &b| a.max(b));
            if top > 0.0 { top * headroom } else { 1.0 }
        })
    }

    fn draw(&self, area: &DrawingArea<SVGBackend<'_>, Shift>, caption: u32) -> Result<()> {
        let mut builder = ChartBuilder::on(area);
        builder
            .caption(&self.title, ("sans-serif", caption))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(55);
        match &self.body {
            Body::Lines(series) => {
                let (x, y) = line_ranges(series);
                let mut chart = builder.build_cartesian_2d(x, y).map_err(plot_err)?;
                let mut mesh = chart.configure_mesh();
                mesh.light_line_style(TRANSPARENT).x_labels(6).y_labels(6);
                self.axis_labels(&mut mesh);
                mesh.draw().map_err(plot_err)?;
                for (i, s) in series.iter().enumerate() {
                    let style = color(i).stroke_width(2);
                    let points = s
                        .points
                        .iter()
                        .copied()
                        .filter(|(x, y)| x.is_finite() && y.is_finite());
                    let anno = chart
                        .draw_series(LineSeries::new(points, style))
                        .map_err(plot_err)?;
                    if !s.name.is_empty() {
                        anno.label(s.name.clone()).legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 16, y)], style)
                        });
                    }
                }
                self.draw_legend(&mut chart)
            }
            Body::Bars { categories, bars } => {
                let n = categories.len();
                let top = self.bar_top(bars, 1.15);
                let mut chart = builder
                    .build_cartesian_2d(-0.5f64..(n.max(1) as f64 - 0.5), 0f64..top)
                    .map_err(plot_err)?;
                let label_of = |x: &f64| {
                    let i = x.round();
                    if (x - i).abs() < 1e-6 && i >= 0.0 && (i as usize) < n {
                        categories[i as usize].clone()
                    } else {
                        String::new()
                    }
                };
                let mut mesh = chart.configure_mesh();
                mesh.disable_x_mesh()
                    .light_line_style(TRANSPARENT)
                    .x_labels(n.max(1))
                    .x_label_formatter(&label_of)
                    .y_labels(11);
                self.axis_labels(&mut mesh);
                mesh.draw().map_err(plot_err)?;
                let width = 0.8 / bars.len().max(1) as f64;
                for (m, b) in bars.iter().enumerate() {
                    let style = color(m).filled();
                    let rects = b.values.iter().enumerate().filter_map(|(g, v)| {
                        let v = v.filter(|v| v.is_finite())?.clamp(0.0, top);
                        let left = g as f64 - 0.4 + m as f64 * width;
                        Some(Rectangle::new(
                            [(left, 0.0), (left + width * 0.92, v)],
                            style,
                        ))
                    });
                    let anno = chart.draw_series(rects).map_err(plot_err)?;
                    legend_box(anno, &b.name, style);
                }
                self.draw_legend(&mut chart)
            }
            Body::Histogram {
                lo,
                hi,
                bars,
                marker,
            } => {
                let (lo, hi) = (*lo, *hi);
                let top = self.bar_top(bars, 1.1);
                let mut chart = builder
                    .build_cartesian_2d(lo..hi, 0f64..top)
                    .map_err(plot_err)?;
                let mut mesh = chart.configure_mesh();
                mesh.disable_x_mesh()
                    .light_line_style(TRANSPARENT)
                    .x_labels(8)
                    .y_labels(6);
                self.axis_labels(&mut mesh);
                mesh.draw().map_err(plot_err)?;
                for (m, b) in bars.iter().enumerate() {
                    let width = (hi - lo) / b.values.len().max(1) as f64;
                    let style = color(m).mix(0.45).filled();
                    let rects = b.values.iter().enumerate().filter_map(|(i, v)| {
                        let v = v.filter(|v| v.is_finite() && *v > 0.0)?.min(top);
                        let x0 = lo + i as f64 * width;
                        Some(Rectangle::new([(x0, 0.0), (x0 + width, v)], style))
                    });
                    let anno = chart.draw_series(rects).map_err(plot_err)?;
                    legend_box(anno, &b.name, style);
                }
                if let Some(x) = marker.filter(|x| lo < *x && *x < hi) {
                    chart
                        .draw_series(LineSeries::new(
                            [(x, 0.0), (x, top)],
                            color(1).stroke_width(2),
                        ))
                        .map_err(plot_err)?;
                }
                self.draw_legend(&mut chart)
            }
        }
    }

    fn axis_labels<X: Ranged, Y: Ranged>(
        &self,
        mesh: &mut MeshStyle<'_, '_, X, Y, SVGBackend<'_>>,
    ) {
        if !self.x_label.is_empty() {
            mesh.x_desc(self.x_label.as_str());
        }
        if !self.y_label.is_empty() {
            mesh.y_desc(self.y_label.as_str());
        }
    }

    fn draw_legend<'a, 's: 'a, CT: CoordTranslate>(
        &self,
        chart: &mut ChartContext<'a, SVGBackend<'s>, CT>,
    ) -> Result<()> {
        if !self.named() {
            return Ok(());
        }
        let position = match self.legend {
            Legend::UpperMiddle => SeriesLabelPosition::UpperMiddle,
            Legend::UpperRight => SeriesLabelPosition::UpperRight,
            Legend::UpperLeft | Legend::Hidden => SeriesLabelPosition::UpperLeft,
        };
        chart
            .configure_series_labels()
            .position(position)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(plot_err)
    }
}

/// Labels a bar series in the legend with a filled box, when it has a name.
fn legend_box<'a, 's: 'a>(
    anno: &mut SeriesAnno<'a, SVGBackend<'s>>,
    name: &str,
    style: ShapeStyle,
) {
    if !name.is_empty() {
        anno.label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
    }
}

/// The x range of the points (exact; one unit wide when they share one x) and the y range
/// padded by 8 % (at least 1e-3); `0..1` where there is no finite point.
fn line_ranges(series: &[Series]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let finite = || {
        series
            .iter()
            .flat_map(|s| &s.points)
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    };
    let span = |it: &mut dyn Iterator<Item = f64>| {
        it.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        })
    };
    let (x0, x1) = span(&mut finite().map(|p| p.0));
    let (y0, y1) = span(&mut finite().map(|p| p.1));
    if !x0.is_finite() {
        return (0.0..1.0, 0.0..1.0);
    }
    let x1 = if x1 > x0 { x1 } else { x0 + 1.0 };
    let pad = ((y1 - y0) * 0.08).max(1e-3);
    (x0..x1, (y0 - pad)..(y1 + pad))
}

/// Several charts under one `title`, in a grid of `columns` (the rows follow), each panel
/// `panel.0` × `panel.1` pixels, each chart's title as its panel's caption.
///
/// # Errors
/// [`Error::Plot`] for no chart, or as [`Chart::svg`].
pub fn panels_svg(
    title: &str,
    charts: &[Chart],
    columns: usize,
    (width, height): (u32, u32),
) -> Result<String> {
    if charts.is_empty() {
        return Err(Error::Plot(format!("figure `{title}`: no chart to draw")));
    }
    charts.iter().try_for_each(Chart::check)?;
    let cols = columns.clamp(1, charts.len());
    let rows = charts.len().div_ceil(cols);
    let size = (width * cols as u32, height * rows as u32 + TITLE_BAND);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let root = root.titled(title, ("sans-serif", 20)).map_err(plot_err)?;
        for (area, chart) in root.split_evenly((rows, cols)).iter().zip(charts) {
            chart.draw(area, 15)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// How many `values` fall in each of `bins` equal bins over `[lo, hi]`; values outside the
/// range (and NaN) count in the nearest edge bin. Empty for zero bins.
pub fn bin_counts(
    values: impl IntoIterator<Item = f64>,
    lo: f64,
    hi: f64,
    bins: usize,
) -> Vec<u64> {
    let mut counts = vec![0u64; bins];
    if bins == 0 {
        return counts;
    }
    let width = (hi - lo) / bins as f64;
    for v in values {
        let i = (((v - lo) / width).floor().max(0.0) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(svg: &str) -> Vec<String> {
        svg.split("</text>")
            .filter_map(|t| t.rsplit('>').next())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect()
    }

    #[test]
    fn bins_count_every_value_and_clamp_the_ends() {
        assert_eq!(bin_counts([0.0, 0.5, 1.0, 1.0], 0.0, 1.0, 2), vec![1, 3]);
        assert_eq!(
            bin_counts([-5.0, f64::NAN, 9.0], 0.0, 1.0, 4),
            vec![2, 0, 0, 1]
        );
        assert!(bin_counts([1.0], 0.0, 1.0, 0).is_empty());
    }

    #[test]
    fn a_line_chart_names_its_axes_and_every_series() {
        let chart = Chart::lines(
            "loss",
            "step",
            "NLL",
            vec![
                Series::new("train", vec![(1.0, 2.0), (2.0, 1.5), (3.0, f64::NAN)]),
                Series::new("held-out", vec![(1.0, 2.2), (3.0, 1.9)]),
            ],
        );
        let svg = chart.svg((560, 320)).unwrap();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let t = texts(&svg);
        for want in ["loss", "step", "NLL", "train", "held-out"] {
            assert!(t.iter().any(|x| x == want), "missing {want} in {t:?}");
        }
        // Two lines and their two legend keys; the axes are thinner.
        assert_eq!(svg.matches(r#"stroke-width="2""#).count(), 2 + 2, "{svg}");
        // No point at all still draws a frame.
        assert!(
            Chart::lines("empty", "x", "y", vec![])
                .svg((200, 100))
                .is_ok()
        );
    }

    #[test]
    fn a_bar_chart_labels_its_groups_and_skips_gaps() {
        let chart = Chart::bars(
            "scores",
            "score",
            vec!["Math.".into(), "Logi.".into(), "overall".into()],
            vec![
                Bars::new("SFT", [5.0, 6.0, 7.0]),
                Bars::partial("DPO", vec![Some(4.0), None, Some(12.0)]),
            ],
        )
        .y_max(10.0)
        .legend(Legend::UpperRight);
        let svg = chart.svg((600, 300)).unwrap();
        for label in ["Math.", "Logi.", "overall", "SFT", "DPO", "scores", "score"] {
            assert!(
                svg.contains(&format!("\n{label}\n</text>")),
                "missing {label}"
            );
        }
        // Per series its bars (none for the gap, the 12 cut at the axis) and its legend key.
        assert_eq!(svg.matches(r##"fill="#1F77B4""##).count(), 3 + 1, "{svg}");
        assert_eq!(svg.matches(r##"fill="#D62728""##).count(), 2 + 1, "{svg}");
    }

    #[test]
    fn histograms_overlay_series_and_check_their_bins() {
        let h = Chart::histogram(
            "scores",
            "score",
            "fraction",
            (-1.0, 1.0),
            vec![
                Bars::new("chosen", [0.0, 0.25, 0.75, 0.0]),
                Bars::new("rejected", [0.5, 0.5, 0.0, 0.0]),
            ],
        )
        .marker_x(0.0);
        let svg = h.svg((400, 300)).unwrap();
        for label in ["chosen", "rejected", "fraction"] {
            assert!(
                svg.contains(&format!("\n{label}\n</text>")),
                "missing {label}"
            );
        }
        let mut bad = h.clone();
        if let Body::Histogram { bars, .. } = &mut bad.body {
            bars[1].values.pop();
        }
        let err = bad.svg((400, 300)).unwrap_err().to_string();
        assert!(err.contains("`rejected` has 3 bins"), "{err}");
        let empty = Chart::histogram("h", "x", "y", (1.0, 1.0), vec![]);
        assert!(empty.svg((400, 300)).is_err());
    }

    #[test]
    fn panels_share_one_title() {
        let panel = |name: &str| {
            Chart::lines(
                name,
                "step",
                "",
                vec![Series::new("run", vec![(0.0, 1.0), (1.0, 2.0)])],
            )
        };
        let svg = panels_svg("figure", &[panel("reward"), panel("KL")], 2, (300, 200)).unwrap();
        for label in ["figure", "reward", "KL"] {
            assert!(
                svg.contains(&format!("\n{label}\n</text>")),
                "missing {label}"
            );
        }
        assert!(
            svg.contains(r#"width="600" height="240""#),
            "{}",
            &svg[..120]
        );
        assert!(panels_svg("none", &[], 2, (300, 200)).is_err());
    }
}
