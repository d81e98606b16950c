//! The CLI's larger subcommands, one file each (the binary's own code; the library holds
//! what they run).

pub mod bench;
pub mod eval;
pub mod export;
pub mod sweep;

/// An accuracy as a percentage, or "-" when there is none.
pub fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |a| format!("{:.2}%", a * 100.0))
}
