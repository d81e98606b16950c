//! `sparselab sweep`: a grid locally, one cell (a scheduler's task), its list, or the files
//! that run it on SLURM or Kubernetes.

use clap::Args;
use std::path::PathBuf;

#[derive(Args)]
pub struct SweepArgs {
    /// The sweep file.
    pub config: PathBuf,
    /// Cells run at once, each a separate process.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// CPU threads per process (default: the machine's cores / jobs).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Results folder (default: the sweep file's `out`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Only rebuild the table and plot from the finished cells.
    #[arg(long)]
    pub report_only: bool,
    /// List the cells with their numbers and states, and stop.
    #[arg(long)]
    pub list: bool,
    /// Run only this cell (see --list); a job array's task sets it through
    /// SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX when omitted.
    #[arg(long)]
    pub cell: Option<usize>,
    /// Write the files that run the grid on a cluster, into <out>/slurm or <out>/k8s.
    #[arg(long, value_name = "slurm|k8s")]
    pub emit: Option<String>,
    /// --emit: the partition (SLURM).
    #[arg(long)]
    pub partition: Option<String>,
    /// --emit: GPUs per cell (0: CPU).
    #[arg(long, default_value_t = 0)]
    pub gpus_per_task: usize,
    /// --emit: CPU cores per cell.
    #[arg(long, default_value_t = 1)]
    pub cpus_per_task: usize,
    /// --emit: wall-time limit per cell, HH:MM:SS or D-HH:MM:SS.
    #[arg(long, default_value = "24:00:00")]
    pub time: String,
    /// --emit: cells running at once (default: all).
    #[arg(long)]
    pub max_parallel: Option<usize>,
    /// --emit: memory per cell, e.g. 16G.
    #[arg(long)]
    pub mem: Option<String>,
    /// --emit: the binary the cluster runs (default: this one; `sparselab` for k8s).
    #[arg(long)]
    pub exe: Option<PathBuf>,
    /// --emit k8s: the container image with sparselab on its PATH.
    #[arg(long, default_value = "sparselab:latest")]
    pub image: String,
    /// --emit k8s: the PersistentVolumeClaim holding the sweep file and folder.
    #[arg(long, default_value = "sparselab-sweeps")]
    pub pvc: String,
    /// --emit k8s: where the volume is mounted (default: the sweep folder's parent).
    #[arg(long)]
    pub mount: Option<PathBuf>,
}

pub fn run(a: SweepArgs) -> anyhow::Result<()> {
    use sparselab::sweep::cluster;
    use sparselab::sweep::{Launcher, SweepConfig, run_cells, write_report};
    if a.jobs == 0 {
        anyhow::bail!("--jobs must be at least 1");
    }
    let (config, root) = SweepConfig::load(&a.config)?;
    let out = a.out.clone().unwrap_or_else(|| config.out.clone());
    let cells = config.cells(&root, &out)?;
    if a.list {
        for (i, cell) in cells.iter().enumerate() {
            println!("{i:>4}  {:<48} {}", cell.name(), cell.state());
        }
        return Ok(());
    }
    if let Some(kind) = &a.emit {
        let absolute = |p: &std::path::Path| std::path::absolute(p);
        let target = cluster::Target {
            exe: match (&a.exe, kind.as_str()) {
                (Some(e), _) => e.clone(),
                (None, "k8s") => PathBuf::from("sparselab"),
                (None, _) => std::env::current_exe()?,
            },
            sweep_file: absolute(&a.config)?,
            out: absolute(&out)?,
            cells: cells.len(),
            title: config.title.clone(),
        };
        let resources = cluster::Resources {
            partition: a.partition.clone(),
            gpus_per_task: a.gpus_per_task,
            cpus_per_task: a.cpus_per_task,
            time: a.time.clone(),
            max_parallel: a.max_parallel,
            mem: a.mem.clone(),
            image: a.image.clone(),
            pvc: a.pvc.clone(),
            mount: a.mount.clone(),
        };
        let files = match kind.as_str() {
            "slurm" => cluster::slurm_files(&target, &resources)?,
            "k8s" => cluster::k8s_files(&target, &resources)?,
            other => anyhow::bail!("--emit {other}: use slurm or k8s"),
        };
        let dir = target.out.join(kind);
        std::fs::create_dir_all(dir.join("logs"))?;
        for (name, text) in &files {
            sparselab::train::checkpoint::write_atomic(&dir.join(name), text.as_bytes())?;
        }
        println!(
            "wrote {} ({} cells); submit with: bash {}",
            files
                .iter()
                .map(|(n, _)| dir.join(n).display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            cells.len(),
            dir.join("submit.sh").display()
        );
        return Ok(());
    }
    let cell = match a.cell {
        Some(c) => Some(c),
        None if !a.report_only => cluster::cell_from_env()?,
        None => None,
    };
    let cells = match cell {
        Some(c) if c >= cells.len() => anyhow::bail!(
            "cell {c}: the sweep has {} cells, numbered 0 to {} (see --list)",
            cells.len(),
            cells.len() - 1
        ),
        Some(c) => cells[c..=c].to_vec(),
        None => cells,
    };
    sparselab::sweep::check_existing(&cells)?;
    let command: Vec<String> = std::env::args().collect();
    let command = format!("scripts/sparselab {}", command[1..].join(" "));
    let mut failed = Vec::new();
    if !a.report_only {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let launcher = Launcher {
            exe: std::env::current_exe()?,
            jobs: a.jobs,
            threads_per_job: a.threads.or((a.jobs > 1).then(|| (cores / a.jobs).max(1))),
        };
        failed = run_cells(&cells, &out, &launcher)?;
    }
    // One cell of a job array: the report is the dependent job's.
    if cell.is_none() {
        let rows = write_report(&config, &cells, &out, &command)?;
        println!(
            "{}",
            std::fs::read_to_string(out.join("results.md")).unwrap_or_default()
        );
        eprintln!(
            "sweep: {} table rows; wrote {}/results.md, results.csv, accuracy.svg",
            rows.len(),
            out.display()
        );
    }
    if !failed.is_empty() {
        anyhow::bail!(
            "{} cells failed (run the sweep again to retry them):\n  {}",
            failed.len(),
            failed.join("\n  ")
        );
    }
    Ok(())
}
