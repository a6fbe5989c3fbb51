//! A small log-scale bar chart of p50 and p99 per path, as SVG text.

use test_support::stats::Summary;

const WIDTH: f64 = 960.0;
const LEFT: f64 = 290.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 60.0;
const ROW: f64 = 34.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn label_us(us: f64) -> String {
    match us {
        u if u >= 1_000_000.0 => format!("{} s", u / 1_000_000.0),
        u if u >= 1_000.0 => format!("{} ms", u / 1_000.0),
        u => format!("{u} µs"),
    }
}

/// A measured value with a sensible unit and 3 significant digits.
fn value_us(us: f64) -> String {
    let (v, unit) = match us {
        u if u >= 1_000_000.0 => (u / 1_000_000.0, "s"),
        u if u >= 1_000.0 => (u / 1_000.0, "ms"),
        u => (u, "µs"),
    };
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    format!("{v:.decimals$} {unit}")
}

/// p50 (dark) and p99 (light) bars per path on a log axis in microseconds.
pub fn latency_chart(rows: &[(String, Summary)]) -> String {
    let max = rows
        .iter()
        .map(|(_, s)| s.p99_us.max(s.p50_us))
        .fold(10.0, f64::max);
    let min = rows.iter().map(|(_, s)| s.p50_us).fold(max, f64::min).max(1.0);
    let (lo, hi) = (
        min.log10().floor(),
        max.log10().ceil().max(min.log10().floor() + 1.0),
    );
    let plot_width = WIDTH - LEFT - RIGHT;
    let x = |us: f64| LEFT + (us.max(1.0).log10() - lo) / (hi - lo) * plot_width;
    let height = TOP + ROW * rows.len() as f64 + 50.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"24\" font-size=\"16\" font-weight=\"bold\">Read latency (log scale): p50 dark, p99 light</text>\n"
    );
    let bottom = TOP + ROW * rows.len() as f64;
    for decade in lo as i32..=hi as i32 {
        let us = 10f64.powi(decade);
        let gx = x(us);
        svg.push_str(&format!(
            "<line x1=\"{gx:.1}\" y1=\"{:.1}\" x2=\"{gx:.1}\" y2=\"{bottom:.1}\" stroke=\"#ddd\"/>\n\
             <text x=\"{gx:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#555\">{}</text>\n",
            TOP - 8.0,
            bottom + 18.0,
            label_us(us)
        ));
    }
    for (i, (label, s)) in rows.iter().enumerate() {
        let y = TOP + ROW * i as f64;
        let text = format!("{} / {}", value_us(s.p50_us), value_us(s.p99_us));
        // Past the right edge the label goes inside the bar, right-aligned, in white.
        let (tx, anchor, colour) = if x(s.p99_us) + 150.0 > WIDTH {
            (x(s.p99_us) - 6.0, "end", "white")
        } else {
            (x(s.p99_us) + 6.0, "start", "#333")
        };
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"22\" fill=\"#9ecae1\"/>\n\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"#08519c\"/>\n\
             <text x=\"{tx:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" fill=\"{colour}\">{text}</text>\n",
            LEFT - 8.0,
            y + 16.0,
            escape(label),
            y + 4.0,
            (x(s.p99_us) - LEFT).max(1.0),
            y + 9.0,
            (x(s.p50_us) - LEFT).max(1.0),
            y + 16.0,
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use test_support::stats::summarize;

    #[test]
    fn draws_one_row_per_path_with_readable_units() {
        let mut fast: Vec<Duration> = (90..110).map(Duration::from_micros).collect();
        let mut slow = vec![Duration::from_secs(5); 3];
        let rows = vec![
            ("raw <GET>".to_owned(), summarize(&mut fast)),
            ("slow".to_owned(), summarize(&mut slow)),
        ];
        let svg = latency_chart(&rows);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains("raw &lt;GET&gt;") && svg.contains("99.0 µs") && svg.contains("5.00 s / 5.00 s")
        );
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }
}
