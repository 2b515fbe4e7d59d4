#!/usr/bin/env bash
# Start a single-node Slurm cluster on this machine (slurmctld + slurmd on 127.0.0.1, its own munged), for the
# Slurm executor's tests and for trying a study on Slurm without a cluster. Works as root in a container
# without systemd (CI, Debian bookworm); needs Debian's `slurm-wlm` and `munge`:
#   apt-get install -y slurm-wlm munge
# Everything lives in one folder (default /tmp/merglot-slurm, or $MERGLOT_SLURM_DIR): munge key and socket,
# slurm.conf, state and spool folders, logs and PID files. Nothing under /etc is touched, so the client
# commands need SLURM_CONF: the script prints the line to eval, e.g.
#   eval "$(scripts/slurm-local/start.sh)"   # exports SLURM_CONF
#   sinfo; sbatch --wrap 'hostname'
#   scripts/slurm-local/stop.sh              # stops the daemons by PID
set -euo pipefail

DIR="${MERGLOT_SLURM_DIR:-/tmp/merglot-slurm}"
CTLD_PORT="${MERGLOT_SLURM_CTLD_PORT:-16817}"
SLURMD_PORT="${MERGLOT_SLURM_SLURMD_PORT:-16818}"

for exe in munged slurmctld slurmd sbatch; do
  if ! command -v "$exe" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$exe" ]; then
    echo "slurm-local: $exe not found: install Slurm and munge first (Debian/Ubuntu: apt-get install -y slurm-wlm munge)" >&2
    exit 1
  fi
done
# The daemons run as root (slurmd starts each job as its user); from another user, through sudo when allowed.
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then
    exec sudo -n --preserve-env=MERGLOT_SLURM_DIR,MERGLOT_SLURM_CTLD_PORT,MERGLOT_SLURM_SLURMD_PORT,MERGLOT_SLURM_CPUS "$0" "$@"
  fi
  echo "slurm-local: must run as root, or as a user with passwordless sudo (slurmd starts jobs as their user)" >&2
  exit 1
fi
PATH="$PATH:/usr/sbin"
HERE="$(cd "$(dirname "$0")" && pwd)"

# Running already (same folder): say so and reuse it.
if [ -f "$DIR/slurmctld.pid" ] && kill -0 "$(cat "$DIR/slurmctld.pid")" 2>/dev/null &&
  [ -f "$DIR/slurmd.pid" ] && kill -0 "$(cat "$DIR/slurmd.pid")" 2>/dev/null; then
  echo "export SLURM_CONF=$DIR/slurm.conf"
  exit 0
fi
"$HERE/stop.sh" >/dev/null 2>&1 || true

# A fresh cluster: no jobs left over from an earlier start.
rm -rf "$DIR"/state "$DIR"/spool
mkdir -p "$DIR"/{munge,state,spool,log}
# readable by every user: the client commands of any user read slurm.conf and talk to munged's socket
chmod 755 "$DIR" "$DIR/munge"

# munge: a fresh key, its own socket (a system munged, if any, is left alone).
dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$DIR/munge/munge.key"
munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
  --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"

HOST="$(hostname -s)"
# MERGLOT_SLURM_CPUS: offer more CPUs than the machine has (tests of tiny jobs: more of them at once)
CPUS="${MERGLOT_SLURM_CPUS:-$(nproc)}"
OVERRIDES=""
[ "$CPUS" -gt "$(nproc)" ] && OVERRIDES="SlurmdParameters=config_overrides"
# RealMemory (MB): what the machine has, less a little for the daemons; jobs ask for --mem within it.
MEM_MB="$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.9 }' /proc/meminfo)"

cat >"$DIR/slurm.conf" <<CONF
# Single-node Slurm for merglot's tests (scripts/slurm-local/start.sh). Not for production.
ClusterName=merglot-local
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups in a container without systemd: track processes by parent PID, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Memory limits without cgroups: the accounting poller kills a step over its --mem (every second).
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Jobs without --mem get 1 GB per CPU (not the whole node, which would run one job at a time).
DefMemPerCPU=1024
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
# Quick turnaround for tests: short grace after a time limit, finished jobs kept visible to scontrol 5 min.
KillWait=2
OverTimeLimit=0
MinJobAge=300
InactiveLimit=0
SlurmdTimeout=60
$OVERRIDES
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

export SLURM_CONF="$DIR/slurm.conf"
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

# Ready when the node is idle (not down / not responding).
for _ in $(seq 1 60); do
  state="$(sinfo -h -N -o '%t' 2>/dev/null | head -n1 || true)"
  case "$state" in
    idle | mix | alloc) echo "export SLURM_CONF=$SLURM_CONF"; exit 0 ;;
  esac
  sleep 0.5
done
echo "slurm-local: the node did not come up (state '${state:-none}'); see $DIR/log/slurmctld.log and $DIR/log/slurmd.log" >&2
exit 1
