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
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"22\" fill=\"#9ecae1\"/>\n\
             <rect x=\"{LEFT}\" y=\"{:.1}\" width=\"{:.1}\" height=\"12\" fill=\"#08519c\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" fill=\"#333\">{:.0} / {:.0} µs</text>\n",
            LEFT - 8.0,
            y + 16.0,
            escape(label),
            y + 4.0,
            (x(s.p99_us) - LEFT).max(1.0),
            y + 9.0,
            (x(s.p50_us) - LEFT).max(1.0),
            (x(s.p99_us) + 6.0).min(WIDTH - 140.0),
            y + 16.0,
            s.p50_us,
            s.p99_us
        ));
    }
    svg.push_str("</svg>\n");
    svg
}
