//! The PHOLD plot: events/s against the number of partitions, one line per
//! remote fraction, and each fraction's floor (the same model as one loop
//! over a heap, no framework) as a dashed line of its colour, as an SVG
//! (text stays text: no fonts needed to draw it).

use plotters::prelude::*;

/// One measured configuration: (partitions, remote fraction, events/s).
pub type Point = (usize, f64, f64);

/// A floor: (remote fraction, events/s).
pub type Floor = (f64, f64);

/// Draws `points` and the `floors` to an SVG file at `path`.
pub fn phold_svg(points: &[Point], floors: &[Floor], path: &std::path::Path) -> Result<(), String> {
    let max_p = points.iter().map(|p| p.0).max().unwrap_or(1).max(2);
    let highest = points.iter().map(|p| p.2).chain(floors.iter().map(|f| f.1));
    let max_y = highest.fold(0.0, f64::max) * 1.15 / 1e6;
    let root = SVGBackend::new(path, (720, 440)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption("PHOLD: 4 096 agents, lookahead 0.1, mean 1 (median events/s)", ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0.5f64..max_p as f64 + 0.5, 0f64..max_y.max(0.1))
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc("partitions")
        .y_desc("M events/s")
        .x_labels(max_p)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut remotes: Vec<f64> = points.iter().map(|p| p.1).collect();
    remotes.sort_by(f64::total_cmp);
    remotes.dedup();
    for (i, remote) in remotes.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let mut line: Vec<(f64, f64)> =
            points.iter().filter(|p| p.1 == *remote).map(|p| (p.0 as f64, p.2 / 1e6)).collect();
        line.sort_by(|a, b| a.0.total_cmp(&b.0));
        chart
            .draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(format!("remote {remote}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        chart
            .draw_series(line.iter().map(|&(x, y)| Circle::new((x, y), 4, color.filled())))
            .map_err(|e| e.to_string())?;
        if let Some(&(_, floor)) = floors.iter().find(|f| f.0 == *remote) {
            let y = floor / 1e6;
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(0.5, y), (max_p as f64 + 0.5, y)],
                    8,
                    6,
                    color.stroke_width(1),
                ))
                .map_err(|e| e.to_string())?
                .label(format!("floor, remote {remote}"))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color));
        }
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .position(SeriesLabelPosition::UpperLeft)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_an_svg_with_a_line_per_remote_fraction() {
        let dir = std::env::temp_dir().join(format!("maslite-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("phold.svg");
        let points = [(1, 0.0, 1.0e6), (2, 0.0, 1.8e6), (1, 0.25, 0.9e6), (2, 0.25, 1.7e6)];
        phold_svg(&points, &[(0.25, 8.0e6)], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("remote 0.25"));
        assert!(svg.contains("floor, remote 0.25"));
        assert!(!svg.contains("floor, remote 0<"), "no floor line without its floor: {svg}");
        assert!(svg.contains("partitions"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
