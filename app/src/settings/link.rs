//! A link's settings: the URL hash read into `Settings` and written back (only what
//! differs from the defaults), percent-encoded.

use super::{CONTROLS, Settings};
use crate::protocol::BackendChoice;

const KEYS: &[&str] = &[
    "data",
    "data_url",
    "synthetic_size",
    "limit",
    "model",
    "width",
    "method",
    "sparsity",
    "distribution",
    "dyrelu",
    "sharing",
    "cyclic",
    "schedule",
    "lr",
    "batch",
    "epochs",
    "seed",
    "update_every",
    "backend",
    "autoplay",
    "hide",
    "then",
];

/// Keys a `then` run may change: the run's own settings, not the page's (data, device,
/// hidden controls, autoplay, or another sequence).
const PAGE_KEYS: &[&str] = &["data", "data_url", "backend", "autoplay", "hide", "then"];

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("link setting {key}={value}: not a valid value"))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(format!("link setting {key}={value}: use 1 or 0")),
    }
}

impl Settings {
    /// Reads a URL hash (with or without the leading `#`). Unknown keys are errors that
    /// list the known ones; values are checked again by the engine at `to_config`.
    pub fn from_hash(hash: &str) -> Result<Self, String> {
        let mut s = Settings::default();
        for pair in hash.trim_start_matches('#').split('&') {
            if pair.is_empty() {
                continue;
            }
            let (key, raw) = pair.split_once('=').unwrap_or((pair, "1"));
            s.set(&decode(key), decode(raw))?;
        }
        Ok(s)
    }

    /// One link setting.
    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let s = self;
        let v = value.as_str();
        match key {
            "data" => s.data = value,
            "data_url" => s.data_url = Some(value),
            "synthetic_size" => s.synthetic_size = parse(key, v)?,
            "limit" => s.limit = parse(key, v)?,
            "model" => s.model = value,
            "width" => s.width = parse(key, v)?,
            "method" => s.method = value,
            "sparsity" => s.sparsity = parse(key, v)?,
            "distribution" => s.distribution = value,
            "dyrelu" => s.east_dyrelu = parse_bool(key, v)?,
            "sharing" => s.east_sharing = parse_bool(key, v)?,
            "cyclic" => s.east_cyclic = parse_bool(key, v)?,
            "schedule" => s.lr_schedule = value,
            "lr" => s.lr = parse(key, v)?,
            "batch" => s.batch = parse(key, v)?,
            "epochs" => s.epochs = parse(key, v)?,
            "seed" => s.seed = parse(key, v)?,
            "update_every" => s.update_every = parse(key, v)?,
            "backend" => {
                s.backend = match v {
                    "auto" => BackendChoice::Auto,
                    "gpu" => BackendChoice::Gpu,
                    "cpu" => BackendChoice::Cpu,
                    _ => return Err(format!("link setting backend={v}: use auto, gpu or cpu")),
                }
            }
            "autoplay" => s.autoplay = parse_bool(key, v)?,
            "hide" => {
                for name in v.split(',').filter(|n| !n.is_empty()) {
                    if !CONTROLS.contains(&name) {
                        return Err(format!(
                            "link setting hide={v}: no control named {name}; controls: {}",
                            CONTROLS.join(", ")
                        ));
                    }
                    s.hide.insert(name.to_string());
                }
            }
            "then" => {
                s.then.clear();
                for run in v.split(';').filter(|r| !r.is_empty()) {
                    s.then.push(parse_then_run(run)?);
                }
            }
            k if k.starts_with("x.") => s.extra.push(format!("{}={value}", &k[2..])),
            k => {
                return Err(format!(
                    "link setting {k}: unknown; known: {}, or x.section.key for any engine setting",
                    KEYS.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// The next run of the sequence (`then`): these settings with its changes, and the
    /// rest of the sequence still to come. None when nothing follows.
    pub fn next_in_sequence(&self) -> Option<Settings> {
        let (first, rest) = self.then.split_first()?;
        let mut next = Settings {
            then: rest.to_vec(),
            ..self.clone()
        };
        for (key, value) in first {
            // Checked when the link was read.
            next.set(key, value.clone()).ok()?;
        }
        Some(next)
    }

    /// The hash that reproduces these settings: only what differs from the defaults.
    pub fn to_hash(&self) -> String {
        let d = Settings::default();
        let mut parts: Vec<String> = Vec::new();
        let mut put = |k: &str, v: String, dv: String| {
            if v != dv {
                parts.push(format!("{k}={}", encode(&v)));
            }
        };
        put("data", self.data.clone(), d.data.clone());
        put(
            "data_url",
            self.data_url.clone().unwrap_or_default(),
            String::new(),
        );
        put(
            "synthetic_size",
            self.synthetic_size.to_string(),
            d.synthetic_size.to_string(),
        );
        put("limit", self.limit.to_string(), d.limit.to_string());
        put("model", self.model.clone(), d.model.clone());
        put("width", self.width.to_string(), d.width.to_string());
        put("method", self.method.clone(), d.method.clone());
        put(
            "sparsity",
            self.sparsity.to_string(),
            d.sparsity.to_string(),
        );
        put(
            "distribution",
            self.distribution.clone(),
            d.distribution.clone(),
        );
        let b = |x: bool| if x { "1" } else { "0" }.to_string();
        put("dyrelu", b(self.east_dyrelu), b(d.east_dyrelu));
        put("sharing", b(self.east_sharing), b(d.east_sharing));
        put("cyclic", b(self.east_cyclic), b(d.east_cyclic));
        put("schedule", self.lr_schedule.clone(), d.lr_schedule.clone());
        put("lr", self.lr.to_string(), d.lr.to_string());
        put("batch", self.batch.to_string(), d.batch.to_string());
        put("epochs", self.epochs.to_string(), d.epochs.to_string());
        put("seed", self.seed.to_string(), d.seed.to_string());
        put(
            "update_every",
            self.update_every.to_string(),
            d.update_every.to_string(),
        );
        let backend = |c: BackendChoice| format!("{c:?}").to_lowercase();
        put("backend", backend(self.backend), backend(d.backend));
        put("autoplay", b(self.autoplay), b(d.autoplay));
        let hide: Vec<&str> = self.hide.iter().map(String::as_str).collect();
        put("hide", hide.join(","), String::new());
        for e in &self.extra {
            if let Some((k, v)) = e.split_once('=') {
                parts.push(format!("x.{k}={}", encode(v)));
            }
        }
        let then: Vec<String> = self
            .then
            .iter()
            .map(|run| {
                let pairs: Vec<String> = run.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                pairs.join(",")
            })
            .collect();
        if !then.is_empty() {
            parts.push(format!("then={}", encode(&then.join(";"))));
        }
        parts.join("&")
    }
}

/// One run of a `then` sequence: `key:value` pairs separated by commas, each a link
/// setting of the run itself (`method:rigl,sparsity:0.99`).
fn parse_then_run(run: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut probe = Settings::default();
    for pair in run.split(',').filter(|p| !p.is_empty()) {
        let Some((key, value)) = pair.split_once(':') else {
            return Err(format!(
                "link setting then={run}: {pair} is not key:value (runs separated by ;, changes by ,)"
            ));
        };
        if PAGE_KEYS.contains(&key) {
            return Err(format!(
                "link setting then={run}: {key} is the page's, not a run's; a sequence changes run settings only"
            ));
        }
        probe
            .set(key, value.to_string())
            .map_err(|e| format!("link setting then={run}: {e}"))?;
        pairs.push((key.to_string(), value.to_string()));
    }
    if pairs.is_empty() {
        return Err(format!("link setting then={run}: a run with no changes"));
    }
    Ok(pairs)
}

fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.,:/~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(hex) = std::str::from_utf8(&bytes[i + 1..i + 3])
            && let Ok(v) = u8::from_str_radix(hex, 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
