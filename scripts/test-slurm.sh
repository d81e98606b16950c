#!/usr/bin/env bash
# The cluster test: a real single-node SLURM (munge, slurmctld, slurmd from Debian's
# slurm-wlm) on this machine, configured in a temporary folder on private ports, then
# engine/tests/slurm.rs submits a sweep to it. Installs SLURM when it is missing (root and
# apt-get); where it cannot, says so and skips. Part of scripts/test.sh. The whole
# workspace is selected so the test reuses the build of the native test phase.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
  || ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
  else
    echo "skipped: SLURM is not installed and cannot be here (needs root and apt-get:"
    echo "  apt-get install slurmctld slurmd slurm-client munge)"
    exit 0
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "skipped: a private slurmd must run as root here (it starts jobs as their user)"
  exit 0
fi

dir=$(mktemp -d /tmp/sparselab-slurm.XXXXXX)
stop() {
  for pid in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munge/munged.pid; do
    [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
  done
  sleep 1
  rm -rf "$dir"
}
trap stop EXIT
mkdir -p "$dir"/{state,spool,log,munge}
chmod 700 "$dir/munge"
# The package's key, or a fresh one for this test alone.
key=/etc/munge/munge.key
if [ ! -r "$key" ]; then
  key="$dir/munge/munge.key"
  dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
  chmod 400 "$key"
fi
munged --force --socket="$dir/munge/munge.socket" --key-file="$key" \
  --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
host=$(hostname -s)
port=$((20000 + RANDOM % 20000))
cat >"$dir/slurm.conf" <<CONF
ClusterName=sparselab-test
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
NodeName=$host CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
  sinfo -h -o %t 2>/dev/null | grep -q idle && break
  sleep 1
done
if ! sinfo -h -o %t | grep -q idle; then
  echo "error: the private SLURM did not come up; its logs:" >&2
  tail -n 20 "$dir"/log/*.log >&2
  exit 1
fi
echo "SLURM $(sinfo -V) up on $host:$port ($dir)"
SPARSELAB_SLURM_CONF="$SLURM_CONF" cargo test --release --locked --workspace --test slurm -- --nocapture 2>&1
