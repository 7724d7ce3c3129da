//! PNG plots of benchmark results (plotters, bitmap backend, the bundled DejaVu font).

use anyhow::{anyhow, Result};
use plotters::prelude::*;
use std::path::Path;

static FONT: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Makes the bundled font plotters' "sans-serif".
pub fn register_font() -> Result<()> {
    plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).map_err(|_| anyhow!("bundled font"))
}

/// One line: a name and a y value per x label.
pub struct Series<'a> {
    pub name: &'a str,
    pub values: Vec<f64>,
}

/// A line chart of `series` over the categorical `labels`, titled with the adapter, driver and CPU.
pub fn line_chart(path: &Path, title: &str, x_label: &str, labels: &[String], series: &[Series<'_>]) -> Result<()> {
    register_font()?;
    let root = BitMapBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let max = series.iter().flat_map(|s| s.values.iter().copied()).fold(1.0f64, f64::max) * 1.1;
    let n = labels.len().max(1);
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 15))
        .margin(20)
        .margin_right(80)
        .x_label_area_size(50)
        .y_label_area_size(60)
        .build_cartesian_2d(0usize..n - 1, (0.5f64..max).log_scale())
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc("frames per second (log)")
        .x_labels(n)
        .x_label_formatter(&|i| labels.get(*i).cloned().unwrap_or_default())
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    const COLORS: [RGBColor; 3] = [RGBColor(220, 60, 40), RGBColor(40, 100, 220), RGBColor(40, 160, 80)];
    for (s, &color) in series.iter().zip(COLORS.iter().cycle()) {
        let points: Vec<(usize, f64)> = s.values.iter().copied().enumerate().collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
            .map_err(|e| anyhow!("{e}"))?
            .label(s.name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3)));
        chart.draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled()))).map_err(|e| anyhow!("{e}"))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
