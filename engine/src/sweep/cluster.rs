//! Sweeps on a cluster, through the scheduler the cluster already has. SLURM job arrays and
//! Kubernetes Indexed Jobs number their tasks 0..N; task N runs
//! `sparselab sweep FILE --cell N`. The sweep folder on shared storage is the only
//! coordination: a finished cell is skipped, an interrupted (preempted, requeued) one resumes
//! from its checkpoint, and the run-folder lock keeps two attempts of one cell apart. A
//! dependent job writes the report once every task has ended.

use anyhow::{Context, bail};
use serde_json::json;
use std::path::{Path, PathBuf};

/// The variables a scheduler sets to a task's index, in the order they are read.
pub const INDEX_VARIABLES: [&str; 2] = ["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"];

/// The cell a scheduler asks this process to run, if any.
pub fn cell_from_env() -> anyhow::Result<Option<usize>> {
    for name in INDEX_VARIABLES {
        if let Ok(value) = std::env::var(name) {
            let cell = value.trim().parse().with_context(|| {
                format!("{name} = {value:?} is not a cell number; run with --cell N")
            })?;
            return Ok(Some(cell));
        }
    }
    Ok(None)
}

/// What every emitted file needs: where the binary, the sweep file and its folder are (as
/// the cluster's nodes see them) and how many cells there are.
pub struct Target {
    pub exe: PathBuf,
    pub sweep_file: PathBuf,
    pub out: PathBuf,
    pub cells: usize,
    pub title: String,
}

/// Scheduler settings (`sparselab sweep FILE --emit slurm|k8s ...`).
#[derive(Clone, Debug)]
pub struct Resources {
    pub partition: Option<String>,
    pub gpus_per_task: usize,
    pub cpus_per_task: usize,
    pub time: String,
    pub max_parallel: Option<usize>,
    pub mem: Option<String>,
    pub image: String,
    pub pvc: String,
    pub mount: Option<PathBuf>,
}

/// A value that goes into a script or a manifest unquoted: plain characters only.
fn plain(what: &str, value: &str, extra: &str) -> anyhow::Result<()> {
    if value.is_empty()
        || !value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(c) || extra.contains(c))
    {
        bail!("{what} = {value:?}: use letters, digits and - _ . : / only");
    }
    Ok(())
}

fn path_str(what: &str, p: &Path) -> anyhow::Result<String> {
    let s = p
        .to_str()
        .context(format!("{what}: not UTF-8"))?
        .to_string();
    plain(what, &s, "+@,")?;
    if !p.is_absolute() {
        bail!("{what} = {s}: must be an absolute path (every node resolves it alike)");
    }
    Ok(s)
}

impl Resources {
    pub fn validate(&self) -> anyhow::Result<()> {
        let t = &self.time;
        let clock = |s: &str| {
            let parts: Vec<&str> = s.split(':').collect();
            parts.len() == 3
                && parts
                    .iter()
                    .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_digit()))
        };
        let ok = match t.split_once('-') {
            Some((days, rest)) => days.chars().all(|c| c.is_ascii_digit()) && clock(rest),
            None => clock(t),
        };
        if !ok {
            bail!("--time {t}: use HH:MM:SS or D-HH:MM:SS");
        }
        if self.cpus_per_task == 0 || self.max_parallel == Some(0) {
            bail!("--cpus-per-task and --max-parallel must be at least 1");
        }
        if let Some(p) = &self.partition {
            plain("--partition", p, ",")?;
        }
        if let Some(m) = &self.mem {
            plain("--mem", m, "")?;
        }
        plain("--image", &self.image, "@")?;
        plain("--pvc", &self.pvc, "")?;
        Ok(())
    }
}

/// The SLURM files, as (file name, text): the array of cells, the report job, and the
/// script that submits both (the report after the array, `afterany`).
pub fn slurm_files(t: &Target, r: &Resources) -> anyhow::Result<Vec<(String, String)>> {
    r.validate()?;
    let exe = path_str("the sparselab binary", &t.exe)?;
    let file = path_str("the sweep file", &t.sweep_file)?;
    let out = path_str("the sweep folder", &t.out)?;
    let logs = format!("{out}/slurm/logs");
    let mut common = String::new();
    if let Some(p) = &r.partition {
        common.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    let throttle = r.max_parallel.map_or(String::new(), |k| format!("%{k}"));
    let mut array = format!(
        "#!/bin/bash\n\
         # {title}: {n} cells of `sparselab sweep`, one per task of a job array.\n\
         # Requeue-safe: a preempted or requeued task resumes its cell from its checkpoint.\n\
         #SBATCH --job-name=sparselab-cells\n\
         #SBATCH --array=0-{last}{throttle}\n\
         #SBATCH --cpus-per-task={cpus}\n\
         #SBATCH --time={time}\n\
         #SBATCH --requeue\n\
         #SBATCH --open-mode=append\n\
         #SBATCH --output={logs}/cell-%a.log\n{common}",
        title = t.title.replace('\n', " "),
        n = t.cells,
        last = t.cells.saturating_sub(1),
        cpus = r.cpus_per_task,
        time = r.time,
    );
    if r.gpus_per_task > 0 {
        array.push_str(&format!("#SBATCH --gpus-per-task={}\n", r.gpus_per_task));
    }
    if let Some(m) = &r.mem {
        array.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    array.push_str(&format!(
        "set -euo pipefail\n\
         export RAYON_NUM_THREADS=\"${{SLURM_CPUS_PER_TASK:-1}}\"\n\
         exec {exe} sweep {file} --out {out} --cell \"$SLURM_ARRAY_TASK_ID\"\n"
    ));
    let report = format!(
        "#!/bin/bash\n\
         # {title}: the results table and plot, once every cell's task has ended.\n\
         #SBATCH --job-name=sparselab-report\n\
         #SBATCH --cpus-per-task=1\n\
         #SBATCH --time=00:30:00\n\
         #SBATCH --open-mode=append\n\
         #SBATCH --output={logs}/report.log\n{common}\
         set -euo pipefail\n\
         exec {exe} sweep {file} --out {out} --report-only\n",
        title = t.title.replace('\n', " "),
    );
    let submit = format!(
        "#!/bin/bash\n\
         # Submits the cells as a job array, then the report to run after it (afterany: it\n\
         # reports whatever finished). Submit again to run what did not finish: finished\n\
         # cells are skipped, interrupted ones resume.\n\
         set -euo pipefail\n\
         mkdir -p {logs}\n\
         here=$(cd \"$(dirname \"$0\")\" && pwd)\n\
         cells=$(sbatch --parsable \"$here/array.sbatch\")\n\
         cells=${{cells%%;*}}\n\
         report=$(sbatch --parsable --dependency=afterany:$cells \"$here/report.sbatch\")\n\
         report=${{report%%;*}}\n\
         echo \"cells: job array $cells; report: job $report (after the array)\"\n"
    );
    Ok(vec![
        ("array.sbatch".into(), array),
        ("report.sbatch".into(), report),
        ("submit.sh".into(), submit),
    ])
}

/// The Kubernetes files: an Indexed Job over the cells (each pod's `JOB_COMPLETION_INDEX`
/// picks its cell), the report Job, and a script that applies the second once the first
/// has ended. The sweep folder lives on a shared volume, mounted where it is here.
pub fn k8s_files(t: &Target, r: &Resources) -> anyhow::Result<Vec<(String, String)>> {
    r.validate()?;
    let file = path_str("the sweep file", &t.sweep_file)?;
    let out = path_str("the sweep folder", &t.out)?;
    let mount = match &r.mount {
        Some(m) => path_str("--mount", m)?,
        None => path_str(
            "the sweep folder's parent",
            t.out.parent().unwrap_or(&t.out),
        )?,
    };
    let exe = t.exe.to_string_lossy().into_owned();
    plain("--exe", &exe, "")?;
    let mut limits = json!({ "cpu": r.cpus_per_task.to_string() });
    if r.gpus_per_task > 0 {
        limits["nvidia.com/gpu"] = json!(r.gpus_per_task.to_string());
    }
    if let Some(m) = &r.mem {
        limits["memory"] = json!(m);
    }
    let pod = |name: &str, command: Vec<String>, restart: &str| {
        json!({
            "restartPolicy": restart,
            "containers": [{
                "name": name,
                "image": r.image,
                "command": command,
                "env": [{ "name": "RAYON_NUM_THREADS", "value": r.cpus_per_task.to_string() }],
                "resources": { "requests": limits.clone(), "limits": limits.clone() },
                "volumeMounts": [{ "name": "sweep", "mountPath": mount }],
            }],
            "volumes": [{ "name": "sweep", "persistentVolumeClaim": { "claimName": r.pvc } }],
        })
    };
    let base = vec![exe.clone(), "sweep".into(), file, "--out".into(), out];
    let cells = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": "sparselab-cells", "labels": { "app": "sparselab" } },
        "spec": {
            "completionMode": "Indexed",
            "completions": t.cells,
            "parallelism": r.max_parallel.unwrap_or(t.cells).min(t.cells.max(1)),
            // A failed or evicted pod is retried; its cell resumes from its checkpoint.
            "backoffLimit": 3 * t.cells.max(1),
            "template": { "spec": pod("cell", base.clone(), "Never") },
        },
    });
    let mut report_cmd = base;
    report_cmd.push("--report-only".into());
    let report = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": { "name": "sparselab-report", "labels": { "app": "sparselab" } },
        "spec": {
            "completions": 1,
            "backoffLimit": 2,
            "template": { "spec": pod("report", report_cmd, "Never") },
        },
    });
    let submit = "#!/bin/bash\n\
         # Applies the cells' Indexed Job, waits until it has ended (complete or failed), then\n\
         # applies the report Job. Delete both Jobs before submitting again.\n\
         set -euo pipefail\n\
         here=$(cd \"$(dirname \"$0\")\" && pwd)\n\
         kubectl apply -f \"$here/cells.json\"\n\
         until kubectl get job sparselab-cells -o jsonpath='{.status.conditions[*].type}' \\\n\
         \x20 | grep -qE 'Complete|Failed'; do sleep 30; done\n\
         kubectl apply -f \"$here/report.json\"\n"
        .to_string();
    Ok(vec![
        (
            "cells.json".into(),
            serde_json::to_string_pretty(&cells)? + "\n",
        ),
        (
            "report.json".into(),
            serde_json::to_string_pretty(&report)? + "\n",
        ),
        ("submit.sh".into(), submit),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> Target {
        Target {
            exe: "/opt/sparselab/bin/sparselab".into(),
            sweep_file: "/shared/sweeps/grid.toml".into(),
            out: "/shared/sweeps/runs/grid".into(),
            cells: 8,
            title: "tiny grid".into(),
        }
    }

    fn resources() -> Resources {
        Resources {
            partition: Some("gpu".into()),
            gpus_per_task: 1,
            cpus_per_task: 4,
            time: "1-02:00:00".into(),
            max_parallel: Some(3),
            mem: Some("16G".into()),
            image: "registry.example/sparselab:0.1".into(),
            pvc: "sweeps".into(),
            mount: Some("/shared".into()),
        }
    }

    #[test]
    fn the_slurm_array_runs_one_cell_per_task_and_the_report_after_it() {
        let files = slurm_files(&target(), &resources()).unwrap();
        let get = |n: &str| &files.iter().find(|(f, _)| f == n).unwrap().1;
        let array = get("array.sbatch");
        for line in [
            "#SBATCH --array=0-7%3",
            "#SBATCH --requeue",
            "#SBATCH --partition=gpu",
            "#SBATCH --gpus-per-task=1",
            "#SBATCH --cpus-per-task=4",
            "#SBATCH --time=1-02:00:00",
            "#SBATCH --mem=16G",
            "exec /opt/sparselab/bin/sparselab sweep /shared/sweeps/grid.toml --out \
             /shared/sweeps/runs/grid --cell \"$SLURM_ARRAY_TASK_ID\"",
        ] {
            assert!(
                array.lines().any(|l| l == line),
                "{line} missing in\n{array}"
            );
        }
        assert!(get("report.sbatch").contains("--report-only"));
        assert!(get("submit.sh").contains("--dependency=afterany:$cells"));
    }

    #[test]
    fn the_k8s_indexed_job_has_the_cells_the_gpu_and_the_shared_volume() {
        let files = k8s_files(&target(), &resources()).unwrap();
        let parse = |n: &str| -> serde_json::Value {
            serde_json::from_str(&files.iter().find(|(f, _)| f == n).unwrap().1).unwrap()
        };
        let cells = parse("cells.json");
        assert_eq!(cells["kind"], "Job");
        assert_eq!(cells["spec"]["completionMode"], "Indexed");
        assert_eq!(cells["spec"]["completions"], 8);
        assert_eq!(cells["spec"]["parallelism"], 3);
        let pod = &cells["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["image"], "registry.example/sparselab:0.1");
        assert_eq!(c["resources"]["limits"]["nvidia.com/gpu"], "1");
        assert_eq!(c["volumeMounts"][0]["mountPath"], "/shared");
        assert_eq!(
            pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
            "sweeps"
        );
        let cmd: Vec<&str> = c["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap())
            .collect();
        // No --cell: each pod reads JOB_COMPLETION_INDEX.
        assert_eq!(cmd[1..3], ["sweep", "/shared/sweeps/grid.toml"]);
        assert!(!cmd.contains(&"--cell"));
        let report = parse("report.json");
        let rc = report["spec"]["template"]["spec"]["containers"][0]["command"].clone();
        assert!(rc.as_array().unwrap().iter().any(|v| v == "--report-only"));
    }

    #[test]
    fn unsafe_values_are_refused() {
        let mut r = resources();
        r.partition = Some("gpu; rm -rf /".into());
        assert!(slurm_files(&target(), &r).is_err());
        let mut r = resources();
        r.time = "forever".into();
        assert!(
            slurm_files(&target(), &r)
                .unwrap_err()
                .to_string()
                .contains("--time")
        );
        let mut t = target();
        t.out = "relative/out".into();
        assert!(slurm_files(&t, &resources()).is_err());
    }
}
