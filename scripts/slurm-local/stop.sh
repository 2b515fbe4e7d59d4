#!/usr/bin/env bash
# Stop the single-node cluster of start.sh: slurmd, slurmctld and munged, each by the PID it wrote.
# Jobs still running are ended with slurmd. State and logs stay in the folder (remove it to start afresh).
set -uo pipefail
DIR="${MERGLOT_SLURM_DIR:-/tmp/merglot-slurm}"
if [ "$(id -u)" != 0 ] && sudo -n true 2>/dev/null; then
  exec sudo -n --preserve-env=MERGLOT_SLURM_DIR "$0" "$@"
fi

stop_pid() {
  local file="$1"
  [ -f "$file" ] || return 0
  local pid
  pid="$(cat "$file")"
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$file"
}

stop_pid "$DIR/slurmd.pid"
stop_pid "$DIR/slurmctld.pid"
stop_pid "$DIR/munge/munged.pid"
exit 0
