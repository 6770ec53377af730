//! loss.svg: the training and validation loss against the step, as one standalone SVG document
//! written by hand. Two lines, a grid and a legend do not need a plotting crate, and plain SVG text
//! opens in any browser and pastes into a report. This file only renders; writing it is the caller's.

use std::fmt::Write;

// Canvas and plot-area margins, in SVG user units (pixels when shown at 100%).
const W: f64 = 800.0;
const H: f64 = 480.0;
const LEFT: f64 = 72.0;
const RIGHT: f64 = 28.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 58.0;

const TRAIN_COLOR: &str = "#1f77b4"; // blue
const VAL_COLOR: &str = "#e8710a"; // orange
const GRID_COLOR: &str = "#e6e6e6";
const INK: &str = "#333333";

/// Renders the loss curves as a standalone SVG document.
pub fn loss_svg(train: &[(usize, f32)], val: &[(usize, f32)], title: &str) -> String {
    // NaN or inf (a diverged step) would poison the ranges and the path, so such points are dropped.
    let finite = |s: &[(usize, f32)]| -> Vec<(f64, f64)> {
        s.iter().filter(|p| p.1.is_finite()).map(|&(x, y)| (x as f64, y as f64)).collect()
    };
    let (train, val) = (finite(train), finite(val));
    let all: Vec<(f64, f64)> = train.iter().chain(&val).copied().collect();

    // X runs from step 0 to the first nice tick at or past the last step, so the axis ends on a label.
    let max_x = all.iter().map(|p| p.0).fold(0.0, f64::max);
    let x_step = tick_step(0.0, if max_x > 0.0 { max_x } else { 100.0 }, 6);
    let x1 = (max_x / x_step).ceil().max(1.0) * x_step;
    // Y follows the data with a margin, not from 0: loss lives in a narrow band far from zero.
    let (lo, hi) = all.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), p| (l.min(p.1), h.max(p.1)));
    let (y0, y1) = if all.is_empty() {
        (0.0, 1.0)
    } else {
        let pad = ((hi - lo) * 0.08).max(lo.abs().max(hi.abs()) * 0.02).max(0.05);
        (lo - pad, hi + pad)
    };
    let (pw, ph) = (W - LEFT - RIGHT, H - TOP - BOTTOM);
    let px = |x: f64| LEFT + x / x1 * pw;
    let py = |y: f64| TOP + (y1 - y) / (y1 - y0) * ph;

    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="13" fill="{INK}">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="32" text-anchor="middle" font-size="18" font-weight="bold">{}</text>"#,
        W / 2.0,
        escape(title)
    );

    // Grid lines and tick labels; labels use one number of decimals per axis so they line up.
    let x_ticks = nice_ticks(0.0, x1, 6);
    let x_dec = decimals(x_step);
    for &t in &x_ticks {
        let x = px(t);
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="{GRID_COLOR}"/><line x1="{x:.1}" y1="{}" x2="{x:.1}" y2="{}" stroke="{INK}"/><text x="{x:.1}" y="{}" text-anchor="middle">{t:.x_dec$}</text>"#,
            TOP + ph,
            TOP + ph,
            TOP + ph + 5.0,
            TOP + ph + 20.0
        );
    }
    let y_dec = decimals(tick_step(y0, y1, 6));
    for t in nice_ticks(y0, y1, 6) {
        let y = py(t);
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="{GRID_COLOR}"/><line x1="{}" y1="{y:.1}" x2="{LEFT}" y2="{y:.1}" stroke="{INK}"/><text x="{}" y="{:.1}" text-anchor="end">{t:.y_dec$}</text>"#,
            LEFT + pw,
            LEFT - 5.0,
            LEFT - 9.0,
            y + 4.5
        );
    }
    // The frame goes over the grid so its edges stay crisp.
    let _ = writeln!(s, r#"<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="{INK}"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle" font-size="14">step</text>"#,
        LEFT + pw / 2.0,
        H - 14.0
    );
    let (ly, lx) = (TOP + ph / 2.0, 20.0);
    let _ = writeln!(
        s,
        r#"<text x="{lx}" y="{ly}" text-anchor="middle" font-size="14" transform="rotate(-90 {lx} {ly})">loss</text>"#
    );

    if all.is_empty() {
        let _ = writeln!(
            s,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="16" fill="#888888">no data</text>"##,
            LEFT + pw / 2.0,
            TOP + ph / 2.0
        );
    }
    let points =
        |pts: &[(f64, f64)]| pts.iter().map(|p| format!("{:.1},{:.1}", px(p.0), py(p.1))).collect::<Vec<_>>().join(" ");
    if !train.is_empty() {
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{TRAIN_COLOR}" stroke-width="1.4" stroke-linejoin="round"/>"#,
            points(&train)
        );
        // A polyline of one point draws nothing, so a lone training point gets a dot.
        if let [p] = train[..] {
            let _ = writeln!(s, r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{TRAIN_COLOR}"/>"#, px(p.0), py(p.1));
        }
    }
    if !val.is_empty() {
        let _ = writeln!(
            s,
            r#"<polyline points="{}" fill="none" stroke="{VAL_COLOR}" stroke-width="2.6" stroke-linejoin="round"/>"#,
            points(&val)
        );
        for p in &val {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="4.5" fill="{VAL_COLOR}" stroke="white" stroke-width="1.5"/>"#,
                px(p.0),
                py(p.1)
            );
        }
    }

    // Legend in the top right of the plot: loss falls, so that corner is where the curves are not.
    let entries: Vec<(&str, &str, f64, bool)> = [
        (!train.is_empty()).then_some(("training", TRAIN_COLOR, 1.4, false)),
        (!val.is_empty()).then_some(("validation", VAL_COLOR, 2.6, true)),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !entries.is_empty() {
        let (bx, by) = (LEFT + pw - 142.0, TOP + 12.0);
        let _ = writeln!(
            s,
            r##"<rect x="{bx}" y="{by}" width="130" height="{}" rx="3" fill="white" fill-opacity="0.9" stroke="#cccccc"/>"##,
            10.0 + 22.0 * entries.len() as f64
        );
        for (i, (name, color, width, marker)) in entries.into_iter().enumerate() {
            let y = by + 16.0 + 22.0 * i as f64;
            let _ = writeln!(
                s,
                r#"<line x1="{}" y1="{y}" x2="{}" y2="{y}" stroke="{color}" stroke-width="{width}"/><text x="{}" y="{}">{name}</text>"#,
                bx + 10.0,
                bx + 40.0,
                bx + 50.0,
                y + 4.5
            );
            if marker {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{}" cy="{y}" r="4.5" fill="{color}" stroke="white" stroke-width="1.5"/>"#,
                    bx + 25.0
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The distance between ticks: 1, 2, 2.5 or 5 times a power of ten, giving about `count` intervals.
fn tick_step(lo: f64, hi: f64, count: usize) -> f64 {
    let raw = (hi - lo) / count.max(1) as f64;
    if raw.is_nan() || raw <= 0.0 || raw.is_infinite() {
        return 1.0;
    }
    let mag = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw * (1.0 - 1e-9)).unwrap_or(10.0 * mag)
}

/// The tick values inside [lo, hi], spaced by `tick_step`; empty when the range is empty or not finite.
pub fn nice_ticks(lo: f64, hi: f64, count: usize) -> Vec<f64> {
    if !lo.is_finite() || !hi.is_finite() || hi < lo {
        return Vec::new();
    }
    let step = tick_step(lo, hi, count);
    // The small slack keeps an end tick that rounding put a hair outside the range.
    let first = (lo / step - 1e-9).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Decimals needed to print multiples of `step` exactly: 50 -> 0, 0.5 -> 1, 0.25 -> 2.
fn decimals(step: f64) -> usize {
    (0..6)
        .find(|&d| {
            let scaled = step * 10f64.powi(d);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.max(1.0)
        })
        .unwrap_or(6) as usize
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    type Series = Vec<(usize, f32)>;

    /// Every tag opens and closes in order; a cheap stand-in for an XML parser.
    fn balanced(svg: &str) -> bool {
        let mut open: Vec<&str> = Vec::new();
        for piece in svg.split('<').skip(1) {
            let Some(end) = piece.find('>') else { return false };
            let tag = &piece[..end];
            let name = tag.trim_start_matches('/').split(|c: char| c.is_whitespace() || c == '/').next().unwrap();
            if tag.starts_with('/') {
                if open.pop() != Some(name) {
                    return false;
                }
            } else if !tag.ends_with('/') {
                open.push(name);
            }
        }
        open.is_empty()
    }

    /// The sample from the brief: train falling noisily from 4.3 to ~2.5, logged every 10 steps.
    fn sample() -> (Series, Series) {
        let train = (0..=30)
            .map(|i| {
                let t = i as f32 / 30.0;
                let noise = ((i * 7919 % 17) as f32 / 17.0 - 0.5) * 0.12;
                (i * 10, 2.5 + 1.8 * (-4.0 * t).exp() + noise)
            })
            .collect();
        (train, vec![(100, 2.74), (200, 2.61), (300, 2.58)])
    }

    #[test]
    fn ticks_are_nice() {
        assert_eq!(nice_ticks(0.0, 300.0, 6), vec![0.0, 50.0, 100.0, 150.0, 200.0, 250.0, 300.0]);
        assert_eq!(nice_ticks(2.5, 4.3, 6), vec![2.5, 3.0, 3.5, 4.0]);
        assert_eq!(nice_ticks(0.0, 10.0, 4), vec![0.0, 2.5, 5.0, 7.5, 10.0]);
        assert_eq!(nice_ticks(0.0, 1000.0, 5), vec![0.0, 200.0, 400.0, 600.0, 800.0, 1000.0]);
        let t = nice_ticks(2.31, 2.79, 6); // a narrow loss band: steps of 0.1
        assert_eq!(t.len(), 4);
        assert!((t[0] - 2.4).abs() < 1e-9 && (t[3] - 2.7).abs() < 1e-9);
        assert!(nice_ticks(f64::NAN, 1.0, 6).is_empty() && nice_ticks(2.0, 1.0, 6).is_empty());
        assert_eq!((decimals(50.0), decimals(0.5), decimals(0.25), decimals(0.1)), (0, 1, 2, 1));
    }

    #[test]
    fn draws_both_curves_and_escapes_the_title() {
        let (train, val) = sample();
        let svg = loss_svg(&train, &val, "Kiln: <tiny> & \"friends\"");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(balanced(&svg), "unbalanced tags");
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches(r#"r="4.5""#).count(), 3 + 1); // three markers and the legend's
        assert!(svg.contains("Kiln: &lt;tiny&gt; &amp; &quot;friends&quot;"));
        assert!(svg.contains(">step</text>") && svg.contains(">loss</text>"));
        assert!(svg.contains(">300</text>") && svg.contains(">3.5</text>"));
    }

    #[test]
    fn edge_cases_do_not_panic() {
        let cases: [(Series, Series); 6] = [
            (vec![], vec![]),
            (vec![(0, 3.0)], vec![]),
            (vec![(5, 3.0)], vec![(5, 3.0)]),
            (vec![(1, f32::NAN), (2, f32::INFINITY), (3, f32::NEG_INFINITY)], vec![]),
            (vec![(10, 2.0), (20, f32::NAN), (30, 1.9)], vec![]),
            (vec![], vec![(100, 2.7), (200, f32::MAX), (300, -f32::MAX)]),
        ];
        for (train, val) in &cases {
            let svg = loss_svg(train, val, "");
            assert!(svg.starts_with("<svg") && balanced(&svg));
            assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        }
        let empty = loss_svg(&[], &[], "t");
        assert!(empty.contains("no data") && empty.contains(">step</text>") && !empty.contains("<polyline"));
        let nan = loss_svg(&[(1, f32::NAN)], &[], "t");
        assert!(nan.contains("no data"));
        let one = loss_svg(&[(0, 3.0)], &[], "t");
        assert_eq!(one.matches("<polyline").count(), 1);
        assert!(one.contains(r#"r="3""#)); // the lone point is visible
        assert!(!one.contains("validation")); // no legend entry for a series that is not there
    }
}
