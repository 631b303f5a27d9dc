//! A webhook's last hour as an inline SVG bar chart, drawn on the server: no JavaScript,
//! readable in any browser and in a screenshot. Each minute is a bar of successful
//! attempts (green) with failed ones stacked on top (red).

use std::fmt::Write;

use crate::activity::ActivityView;

const WIDTH: usize = 720;
const HEIGHT: usize = 160;
const LEFT: usize = 40;
const BOTTOM: usize = 20;
const TOP: usize = 10;

/// The chart of `view`, with an accessible title and the scale's top value.
pub(super) fn activity_chart(view: &ActivityView) -> String {
    let minutes = view.per_minute.len().max(1);
    let most = view
        .per_minute
        .iter()
        .map(|(delivered, failed)| delivered + failed)
        .max()
        .unwrap_or(0)
        .max(1);
    let plot_width = WIDTH - LEFT;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = plot_width as f64 / minutes as f64;
    let bar = (slot * 0.8).max(1.0);
    let (delivered_total, failed_total) = view
        .per_minute
        .iter()
        .fold((0, 0), |(ok, bad), (delivered, failed)| {
            (ok + delivered, bad + failed)
        });
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" \
height=\"{HEIGHT}\" xmlns=\"http://www.w3.org/2000/svg\"><title>Attempts per minute over the \
last hour: {delivered_total} delivered, {failed_total} failed</title>\
<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{WIDTH}\" y2=\"{base}\" stroke=\"#d0d7de\"/>\
<text x=\"{label}\" y=\"{top_text}\" font-size=\"11\" text-anchor=\"end\" fill=\"#656d76\">{most}</text>\
<text x=\"{label}\" y=\"{base}\" font-size=\"11\" text-anchor=\"end\" fill=\"#656d76\">0</text>",
        base = HEIGHT - BOTTOM,
        label = LEFT - 6,
        top_text = TOP + 10,
    );
    for (index, (delivered, failed)) in view.per_minute.iter().enumerate() {
        let x = LEFT as f64 + index as f64 * slot + (slot - bar) / 2.0;
        let scale = |count: u64| count as f64 / most as f64 * plot_height as f64;
        let ok_height = scale(*delivered);
        let failed_height = scale(*failed);
        let base = (HEIGHT - BOTTOM) as f64;
        if *delivered > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{ok_height:.1}\" \
fill=\"#2da44e\"><title>{delivered} delivered</title></rect>",
                base - ok_height
            );
        }
        if *failed > 0 {
            let _ = write!(
                svg,
                "<rect x=\"{x:.1}\" y=\"{:.1}\" width=\"{bar:.1}\" height=\"{failed_height:.1}\" \
fill=\"#cf222e\"><title>{failed} failed</title></rect>",
                base - ok_height - failed_height
            );
        }
    }
    let _ = write!(
        svg,
        "<text x=\"{LEFT}\" y=\"{HEIGHT}\" font-size=\"11\" fill=\"#656d76\">60 min ago</text>\
<text x=\"{WIDTH}\" y=\"{HEIGHT}\" font-size=\"11\" text-anchor=\"end\" fill=\"#656d76\">now</text></svg>"
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_for_minutes_with_attempts_and_a_scale() {
        let mut per_minute = vec![(0, 0); 60];
        per_minute[10] = (4, 0);
        per_minute[59] = (2, 2);
        let svg = activity_chart(&ActivityView {
            per_minute,
            ..ActivityView::default()
        });
        assert!(svg.starts_with("<svg"));
        assert!(svg.ends_with("</svg>"));
        assert_eq!(svg.matches("<rect").count(), 3);
        assert!(svg.contains("6 delivered, 2 failed"));
        assert!(svg.contains("<title>2 failed</title>"));
        assert!(
            svg.contains(">4</text>"),
            "the scale's top is the busiest minute"
        );
        let empty = activity_chart(&ActivityView {
            per_minute: vec![(0, 0); 60],
            ..ActivityView::default()
        });
        assert_eq!(empty.matches("<rect").count(), 0);
    }
}
