//! Sweep-grid reporting: per-run results aggregated per variant and sparsity, as a
//! markdown table and a CSV file (the SVG plot of the same rows: `chart.rs`).
//! Std-only so any binary of the lab can emit reports without extra dependencies.

use std::fmt::Write as _;

/// One cell of a sweep grid: one run (variant, sparsity, seed).
#[derive(Clone, Debug, PartialEq)]
pub struct CellResult {
    pub variant: String,
    pub sparsity: f64,
    pub seed: u64,
    pub best_val_accuracy: Option<f64>, // fraction in [0,1]; None if never evaluated
    pub final_val_accuracy: Option<f64>,
    pub nonzeros: usize,           // learnable non-zeros counted from the masks
    pub effective_nonzeros: usize, // a weight reused by shared blocks counts at every reuse
    pub connected_nonzeros: Option<usize>, // of `nonzeros`, those on an input→output path
    pub prunable: usize,
    pub dense_params: usize, // outside the masks (BatchNorm, DyReLU, gains), always dense
    pub train_flops: f64,
    pub wall_seconds: f64,
    pub finished: bool,
}

/// One line of the table: one (variant, sparsity), aggregated over seeds.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub variant: String,
    pub sparsity: f64,
    pub seeds: usize,
    pub best: Stat, // percent
    pub last: Stat, // percent
    pub nonzeros: f64,
    pub effective_nonzeros: f64,
    pub connected_nonzeros: f64, // NaN when no run counted them
    pub dense_params: f64,
    pub train_flops: Stat,
    pub wall_seconds: Stat,
}

#[derive(Clone, Copy, Debug, PartialEq)]
/// Sample std (n-1); `std` is NaN when n < 2 and `mean` is NaN when n == 0.
pub struct Stat {
    pub mean: f64,
    pub std: f64,
    pub n: usize,
}

impl Stat {
    /// Sample (n-1) std: a handful of seeds is a sample, not the population of runs.
    pub fn of(values: &[f64]) -> Stat {
        let n = values.len();
        // 0.0 / 0.0 already yields the NaN mean of an empty slice.
        let mean = values.iter().sum::<f64>() / n as f64;
        let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
        let std = (n >= 2).then(|| (ss / (n - 1) as f64).sqrt());
        let std = std.unwrap_or(f64::NAN);
        Stat { mean, std, n }
    }
}

fn stat_over(runs: &[&CellResult], f: impl Fn(&CellResult) -> Option<f64>) -> Stat {
    let values: Vec<f64> = runs.iter().filter_map(|c| f(c)).collect();
    Stat::of(&values)
}

/// Groups finished cells by (variant, sparsity). Rows are ordered by `variant_order`
/// (variants not listed come after, alphabetically), then by increasing sparsity.
/// Accuracies that were never evaluated are left out of the stats, so `best.n` may be below `seeds`.
pub fn aggregate(cells: &[CellResult], variant_order: &[String]) -> Vec<Row> {
    let mut groups: Vec<(&str, f64, Vec<&CellResult>)> = Vec::new();
    for c in cells.iter().filter(|c| c.finished) {
        match groups
            .iter_mut()
            .find(|g| g.0 == c.variant && g.1 == c.sparsity)
        {
            Some(g) => g.2.push(c),
            None => groups.push((&c.variant, c.sparsity, vec![c])),
        }
    }
    let rank = |v: &str| variant_order.iter().position(|o| o == v);
    let key = |v| (rank(v).unwrap_or(usize::MAX), v);
    groups.sort_by(|a, b| key(a.0).cmp(&key(b.0)).then(a.1.total_cmp(&b.1)));
    groups
        .into_iter()
        .map(|(variant, sparsity, runs)| Row {
            variant: variant.to_string(),
            sparsity,
            seeds: runs.len(),
            best: stat_over(&runs, |c| c.best_val_accuracy.map(|a| a * 100.0)),
            last: stat_over(&runs, |c| c.final_val_accuracy.map(|a| a * 100.0)),
            nonzeros: stat_over(&runs, |c| Some(c.nonzeros as f64)).mean,
            effective_nonzeros: stat_over(&runs, |c| Some(c.effective_nonzeros as f64)).mean,
            connected_nonzeros: stat_over(&runs, |c| c.connected_nonzeros.map(|n| n as f64)).mean,
            dense_params: stat_over(&runs, |c| Some(c.dense_params as f64)).mean,
            train_flops: stat_over(&runs, |c| Some(c.train_flops)),
            wall_seconds: stat_over(&runs, |c| Some(c.wall_seconds)),
        })
        .collect()
}

/// Six decimals then trimmed, so float noise (0.999 * 100 = 99.899999...) never shows.
pub(super) fn percent(sparsity: f64) -> String {
    let s = format!("{:.6}", sparsity * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

fn acc_cell(s: Stat) -> String {
    match (s.mean.is_nan(), s.std.is_nan()) {
        (true, _) => "n/a".into(),
        (false, true) => format!("{:.2} ± n/a", s.mean),
        (false, false) => format!("{:.2} ± {:.2}", s.mean, s.std),
    }
}

fn num_cell(v: f64, fmt: fn(f64) -> String) -> String {
    if v.is_nan() { "n/a".into() } else { fmt(v) }
}

/// The fence is longer than any backtick run in the command so the command is shown verbatim.
pub fn markdown(rows: &[Row], title: &str, command: &str) -> String {
    let longest_ticks = command.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_ticks.max(2) + 1);
    let mut out = format!("# {title}\n\nCommand:\n\n{fence}\n{command}\n{fence}\n\n");
    out.push_str(
        "| variant | sparsity | seeds | best val acc % (mean ± std) | final val acc % (mean ± std) \
         | non-zeros | effective non-zeros | connected non-zeros | dense params \
         | training FLOPs (mean) | wall s (mean) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let count = |v: f64| format!("{v:.0}");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.variant.replace('|', "\\|"),
            percent(r.sparsity),
            r.seeds,
            acc_cell(r.best),
            acc_cell(r.last),
            num_cell(r.nonzeros, count),
            num_cell(r.effective_nonzeros, count),
            num_cell(r.connected_nonzeros, count),
            num_cell(r.dense_params, count),
            num_cell(r.train_flops.mean, |v| format!("{v:.2e}")),
            num_cell(r.wall_seconds.mean, |v| format!("{v:.1}")),
        );
    }
    out
}

const CSV_HEADER: &str = "variant,sparsity,seeds,best_mean,best_std,final_mean,final_std,nonzeros,\
effective_nonzeros,connected_nonzeros,dense_params,train_flops_mean,train_flops_std,wall_seconds_mean";

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Numbers use `Display` (shortest round-trip form), so values re-parse exactly.
pub fn csv(rows: &[Row]) -> String {
    let mut out = format!("{CSV_HEADER}\n");
    let num = |v: f64| {
        if v.is_nan() {
            String::new()
        } else {
            v.to_string()
        }
    };
    for r in rows {
        let (b, l, f, w) = (r.best, r.last, r.train_flops, r.wall_seconds);
        let stats = [r.sparsity, r.seeds as f64, b.mean, b.std, l.mean, l.std];
        let counts = [
            r.nonzeros,
            r.effective_nonzeros,
            r.connected_nonzeros,
            r.dense_params,
        ];
        let flops_wall = [f.mean, f.std, w.mean];
        let fields: Vec<String> = stats
            .into_iter()
            .chain(counts)
            .chain(flops_wall)
            .map(num)
            .collect();
        let _ = writeln!(out, "{},{}", csv_field(&r.variant), fields.join(","));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sweep::chart::{PLOT_L, PLOT_R, accuracy_svg};

    fn cell(variant: &str, sparsity: f64, seed: u64, acc: Option<f64>) -> CellResult {
        CellResult {
            variant: variant.into(),
            sparsity,
            seed,
            best_val_accuracy: acc.map(|a| a + 0.01),
            final_val_accuracy: acc,
            nonzeros: 100 + seed as usize,
            effective_nonzeros: 200,
            connected_nonzeros: Some(90 + seed as usize),
            prunable: 10_000,
            dense_params: 50,
            train_flops: 1.234e15,
            wall_seconds: 10.0,
            finished: true,
        }
    }

    fn grid() -> Vec<CellResult> {
        let mut cells = Vec::new();
        for v in ["zeta", "alpha", "d,\"q\""] {
            for s in [0.9999, 0.99, 0.999] {
                for seed in 0..2 {
                    let acc = 0.5 + s / 10.0 + seed as f64 * 0.01;
                    cells.push(cell(v, s, seed, Some(acc)));
                }
            }
        }
        cells
    }

    fn attrs<'a>(svg: &'a str, tag: &str, attr: &str) -> Vec<&'a str> {
        let key = format!(" {attr}=\"");
        let value = |el: &'a str| el.split(&key).nth(1).unwrap().split('"').next().unwrap();
        svg.split(tag).skip(1).map(value).collect()
    }

    fn cxs(svg: &str) -> Vec<f64> {
        let values = attrs(svg, "<circle", "cx");
        values.iter().map(|v| v.parse().unwrap()).collect()
    }

    #[test]
    fn stat_mean_and_sample_std() {
        let s = Stat::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.std - 1.2909944).abs() < 1e-6);
        assert_eq!(s.n, 4);
        let one = Stat::of(&[7.0]);
        assert_eq!(one.mean, 7.0);
        assert!(one.std.is_nan());
        let none = Stat::of(&[]);
        assert!(none.mean.is_nan() && none.std.is_nan() && none.n == 0);
    }

    #[test]
    fn aggregate_orders_groups_and_skips_unfinished() {
        let mut cells = grid();
        let unfinished = |v, s| CellResult {
            finished: false,
            ..cell(v, s, 9, Some(0.0))
        };
        cells.extend([unfinished("zeta", 0.99), unfinished("ghost", 0.5)]);
        cells.push(cell("beta", 0.9, 0, None));
        let rows = aggregate(&cells, &["zeta".to_string()]);
        let keys: Vec<String> = rows
            .iter()
            .map(|r| format!("{}@{}", r.variant, r.sparsity))
            .collect();
        let expected = "zeta@0.99 zeta@0.999 zeta@0.9999 alpha@0.99 alpha@0.999 alpha@0.9999 \
                        beta@0.9 d,\"q\"@0.99 d,\"q\"@0.999 d,\"q\"@0.9999";
        assert_eq!(keys.join(" "), expected);
        let z = &rows[0];
        assert_eq!((z.seeds, z.last.n), (2, 2));
        assert!((z.last.mean - (50.0 + 9.9 + 0.5)).abs() < 1e-9);
        assert_eq!(z.nonzeros, 100.5);
        let beta = &rows[6];
        assert_eq!((beta.seeds, beta.best.n), (1, 0));
        assert!(beta.best.mean.is_nan());
    }

    #[test]
    fn markdown_formats_cells() {
        let mut cells = grid();
        cells.push(cell("solo", 0.9, 0, Some(0.6808)));
        cells.push(cell("solo", 0.0, 0, Some(0.5)));
        let rows = aggregate(&cells, &[]);
        let md = markdown(&rows, "Sweep <1>", "sparselab sweep --grid a`b");
        assert!(md.starts_with("# Sweep <1>\n"));
        assert!(md.contains("```\nsparselab sweep --grid a`b\n```"));
        assert!(md.contains("| variant | sparsity | seeds | best val acc % (mean ± std) |"));
        assert!(md.contains("| 99.9% |") && md.contains("| 99.99% |") && md.contains("| 99% |"));
        assert!(md.contains("| solo | 0% | 1 |"));
        assert!(md.contains(
            "| solo | 90% | 1 | 69.08 ± n/a | 68.08 ± n/a | 100 | 200 | 90 | 50 | 1.23e15 | 10.0 |"
        ));
        assert!(md.contains("± 0.71"));
    }

    #[test]
    fn csv_header_and_escaping() {
        let mut cells = vec![cell("plain", 0.99, 0, Some(0.5))];
        cells.push(cell("a,\"b\"", 0.999, 0, None));
        let text = csv(&aggregate(&cells, &[]));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], CSV_HEADER);
        assert_eq!(lines[0].split(',').count(), 14);
        assert!(lines[1].starts_with("\"a,\"\"b\"\"\",0.999,1,,,,,"));
        let plain = "plain,0.99,1,51,,50,,100,200,90,50,1234000000000000,,10";
        assert_eq!(lines[2], plain);
    }

    #[test]
    fn svg_is_well_formed_and_x_increases_with_sparsity() {
        let cells: Vec<CellResult> = grid().into_iter().filter(|c| c.variant != "zeta").collect();
        let rows = aggregate(&cells, &["alpha".to_string()]);
        let svg = accuracy_svg(&rows, "Acc & <loss> \"q\"");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let opened = svg.matches("<g ").count() + svg.matches("<g>").count();
        assert_eq!(opened, svg.matches("</g>").count());
        assert!(svg.contains("Acc &amp; &lt;loss&gt; &quot;q&quot;"));
        assert!(svg.contains("d,&quot;q&quot;"));
        let series: Vec<&str> = svg.split("<g class=\"series\"").skip(1).collect();
        assert_eq!(series.len(), 2);
        for s in &series {
            assert!(attrs(s, "<polyline", "points")[0].split(' ').count() >= 2);
            let xs = cxs(s);
            assert_eq!(xs.len(), 3);
            assert!(xs[0] < xs[1] && xs[1] < xs[2], "{xs:?}");
            // Equal steps in log density for 99% -> 99.9% -> 99.99%.
            assert!(((xs[1] - xs[0]) - (xs[2] - xs[1])).abs() < 0.2);
        }
        for label in ["99%", "99.9%", "99.99%"] {
            assert!(svg.contains(&format!(">{label}</text>")));
        }
    }

    #[test]
    fn svg_edge_cases() {
        let empty = accuracy_svg(&[], "t");
        assert!(empty.starts_with("<svg") && empty.contains("no finished runs"));
        assert!(empty.trim_end().ends_with("</svg>"));
        let rows = aggregate(&[cell("one", 0.95, 0, Some(0.7))], &[]);
        let svg = accuracy_svg(&rows, "t");
        assert_eq!(cxs(&svg), vec![(PLOT_L + PLOT_R) / 2.0]);
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
        // A 70% mean with no std bounds the y axis at 70.
        assert!(svg.contains(">70</text>") && !svg.contains(">80</text>"));
    }
}
