#!/usr/bin/env bash
# A one-node Slurm cluster on this machine (munged, slurmctld, slurmd), for
# the test that runs a planned sweep through a real Slurm job array.
#
#   scripts/slurm_local.sh start    # prints the SLURM_CONF to export
#   scripts/slurm_local.sh stop
#
# Needs root and Debian's `slurm-wlm` and `munge` (.ci/run installs them).
# Settings that let slurmd start in a container without systemd or usable
# cgroups: proctrack/linuxproc, task/none, jobacct_gather/none and no
# cgroup.conf. Everything lives under $DEPTHLAB_SLURM_DIR (default
# /tmp/depthlab-slurm); nothing under /etc/slurm is touched.
set -euo pipefail
state="${DEPTHLAB_SLURM_DIR:-/tmp/depthlab-slurm}"
conf="$state/slurm.conf"

stop() {
    local pids=()
    for daemon in slurmd slurmctld; do
        pidfile="$state/run/$daemon.pid"
        if [[ -s "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
            pids+=("$(cat "$pidfile")")
            kill "${pids[-1]}" || true
        fi
    done
    # The daemons take a moment to shut down; wait for them (at most 10 s).
    for _ in $(seq 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || return 0
        sleep 0.1
    done
    echo "slurm_local: the daemons did not stop: ${pids[*]}" >&2
}

start() {
    for tool in munged slurmctld slurmd sbatch sinfo; do
        command -v "$tool" >/dev/null || [[ -x "/usr/sbin/$tool" ]] || { echo "slurm_local: $tool is not installed (apt-get install slurm-wlm munge)" >&2; exit 3; }
    done
    [[ $(id -u) -eq 0 ]] || { echo "slurm_local: must run as root (munge key, daemons)" >&2; exit 3; }
    stop
    mkdir -p "$state"/{spool,state,log,run}
    # munge: a key only the munge user reads, the daemon run as that user.
    mkdir -p /etc/munge /run/munge /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
    chown munge:munge /etc/munge/munge.key /run/munge /var/log/munge /var/lib/munge
    chmod 400 /etc/munge/munge.key
    if ! pgrep -x munged >/dev/null; then
        runuser -u munge -- /usr/sbin/munged
    fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n | unmunge >/dev/null

    host="$(hostname -s)"
    cpus="$(nproc)"
    mem="$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)"
    cat > "$conf" <<CONF
ClusterName=depthlab
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$state/state
SlurmdSpoolDir=$state/spool
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=lab Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$conf"
    slurmctld -f "$conf"
    slurmd -f "$conf"
    for _ in $(seq 100); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
            echo "$conf"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm_local: the node did not become idle; logs:" >&2
    tail -n 20 "$state"/log/*.log >&2 || true
    exit 4
}

case "${1:-start}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
