#!/usr/bin/env bash
# Stop the single-node SLURM test cluster started by start-cluster.sh.
#
#   sudo tests/slurm/stop-cluster.sh
#   sudo tests/slurm/stop-cluster.sh slurmdbd mariadbd munged   # only those
#
# The daemons are stopped in the reverse order of their start: slurmd,
# slurmctld, slurmdbd, mariadbd, munged. Each is the process whose PID
# start-cluster.sh recorded in $SLURM_TEST_DIR/pids/; a daemon caught before
# it wrote its PID file (a start that failed half-way) is found by its name
# and this cluster's SLURM_CONF in its environment, which start-cluster.sh
# exports to every daemon: a process of another cluster, or of none, is never
# signalled. When slurmctld and slurmd are both stopped, jobs still running
# are cancelled first, so that no job process outlives the cluster; if
# slurmctld is already dead, leftover job processes are found and stopped.
# Stopping slurmctld alone (a controller restart) leaves the jobs running:
# start-cluster.sh starts it again with its saved queue. The state folder
# (configs, logs, accounting database) is kept: the next start reuses it;
# delete $SLURM_TEST_DIR for a completely fresh cluster.
#
# Arguments: daemon names to stop only those (start-cluster.sh, when it
# fails, passes the ones it launched itself); leftover job processes are then
# left alone, as the daemons that run them may be kept.
#
# Idempotent: succeeds (and says so) when nothing is running.
#
# Environment: SLURM_TEST_DIR (default /tmp/mnist-xp-slurm), as for start-cluster.sh.

set -euo pipefail

SLURM_TEST_DIR="${SLURM_TEST_DIR:-/tmp/mnist-xp-slurm}"
PIDS="$SLURM_TEST_DIR/pids"
failed=0   # set to 1 when a process refuses to die
export SLURM_CONF="$SLURM_TEST_DIR/etc/slurm.conf"

log() { printf '[slurm-test] %s\n' "$*" >&2; }

DAEMONS=(slurmd slurmctld slurmdbd mariadbd munged)   # in stopping order
selected=" ${DAEMONS[*]} "
if [ "$#" -gt 0 ]; then
    for name in "$@"; do
        [[ " ${DAEMONS[*]} " == *" $name "* ]] \
            || { log "ERROR: unknown daemon '$name' (known: ${DAEMONS[*]})"; exit 2; }
    done
    selected=" $* "
fi
wanted() { [[ "$selected" == *" $1 "* ]]; }

# alive PID NAME: true while PID is a process named NAME that is not a
# zombie. The container init may take a couple of seconds to reap an exited
# daemon, so `kill -0` (true for zombies) is not enough: read /proc/PID/stat,
# whose 3rd field is the state ('Z' = zombie = already dead). Checking the name
# avoids ever signalling an unrelated process that reused a stale PID.
alive() {
    local pid="$1" name="$2" state
    [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# stop_pid PID NAME [GRACE]: SIGTERM, wait up to GRACE s (default 15), then
# SIGKILL and wait 5 s.
stop_pid() {
    local pid="$1" name="$2" grace="${3:-15}" _
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq $((grace * 10))); do
        alive "$pid" "$name" || return 0
        sleep 0.1
    done
    log "$name (pid $pid) ignored SIGTERM for $grace s: sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        alive "$pid" "$name" || return 0
        sleep 0.1
    done
    log "WARNING: $name (pid $pid) is still alive after SIGKILL"
    return 1
}

# ours PID [job]: true when the environment of PID has our SLURM_CONF (and,
# with "job", SLURM_JOB_ID: a job process, not a daemon or a shell that merely
# sourced env.sh).
ours() {  # ours PID [job]
    local env
    # (kernel threads and zombies have no readable environment: skip them)
    env="$( { tr '\0' '\n' < "/proc/$1/environ"; } 2>/dev/null)" || return 1
    grep -qxF "SLURM_CONF=$SLURM_CONF" <<< "$env" || return 1
    [ "${2:-}" != job ] || grep -q '^SLURM_JOB_ID=' <<< "$env"
}

# stop_daemon NAME: stop the daemon recorded in $PIDS/NAME.pid, then any other
# process named NAME of this cluster (one that had no PID file yet).
stop_daemon() {
    local name="$1" file="$PIDS/$1.pid" pid dir
    if [ -e "$file" ]; then
        pid="$(tr -dc '0-9' < "$file")"
        if [ -n "$pid" ] && alive "$pid" "$name"; then
            log "stopping $name (pid $pid)"
            stop_pid "$pid" "$name" || failed=1
        else
            log "$name: not running (stale pid file removed)"
        fi
    fi
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [ "$(cat "$dir/comm" 2>/dev/null)" = "$name" ] || continue
        ours "$pid" || continue
        alive "$pid" "$name" || continue
        log "stopping $name (pid $pid, found by name and SLURM_CONF)"
        stop_pid "$pid" "$name" || failed=1
    done
    # (last: a daemon stopped while starting may have written it meanwhile)
    rm -f "$file"
}

if [ "$#" -eq 0 ] && { [ ! -d "$PIDS" ] || [ -z "$(ls -A "$PIDS" 2>/dev/null)" ]; }; then
    log "no daemon recorded in $PIDS: nothing to stop"
    exit 0
fi

# Cancel the jobs still in the queue while slurmctld can still do it cleanly
# (slurmd then kills their processes; KillWait=5 in slurm.conf).
if wanted slurmctld && wanted slurmd && [ -s "$PIDS/slurmctld.pid" ] && alive "$(tr -dc '0-9' < "$PIDS/slurmctld.pid")" slurmctld; then
    jobs="$(squeue -h -o '%A' 2>/dev/null || true)"
    if [ -n "$jobs" ]; then
        log "cancelling remaining jobs: $(echo "$jobs" | tr '\n' ' ')"
        # shellcheck disable=SC2086
        scancel $jobs 2>/dev/null || true
        for _ in $(seq 100); do
            [ -z "$(squeue -h -t running,completing -o '%A' 2>/dev/null || true)" ] && break
            sleep 0.1
        done
    fi
fi

for name in "${DAEMONS[@]}"; do
    if wanted "$name"; then
        stop_daemon "$name"
    fi
done

if [ "$#" -gt 0 ]; then
    if [ "$failed" -ne 0 ]; then
        log "some processes could not be stopped"
        exit 1
    fi
    log "no longer running: $*"
    exit 0
fi

# Normally nothing is left at this point. But if slurmctld was already dead,
# the jobs could not be cancelled: the job processes and their slurmstepd
# (detached from slurmd) still run. Both carry our SLURM_CONF in their
# environment; job processes also carry SLURM_JOB_ID, which tells them apart
# from a shell that merely sourced env.sh (such as our caller).
# This script and its ancestors are never touched (in case it runs in a job).
keep=" "; p=$$
while [ "$p" -gt 1 ] 2>/dev/null; do
    keep+="$p "
    # /proc/PID/stat is "PID (comm) STATE PPID ...", comm may contain spaces.
    p="$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $2}')" || p=0
done
# stop_leftovers job|slurmstepd: SIGTERM all of them at once, then stop_pid each.
stop_leftovers() {
    local kind="$1" dir pid name list=()
    for dir in /proc/[0-9]*; do
        pid="${dir#/proc/}"
        [[ "$keep" != *" $pid "* ]] || continue
        name="$(cat "$dir/comm" 2>/dev/null)" || continue
        if [ "$kind" = slurmstepd ]; then
            [ "$name" = slurmstepd ] || continue
            ours "$pid" || continue
        else
            [ "$name" != slurmstepd ] || continue
            ours "$pid" job || continue
        fi
        log "stopping leftover $kind process $name (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        list+=("$pid:$name")
    done
    # slurmstepd ignores SIGTERM by design: give it only 1 s before SIGKILL.
    for pid in "${list[@]}"; do
        stop_pid "${pid%%:*}" "${pid#*:}" "$([ "$kind" = slurmstepd ] && echo 1 || echo 15)" || failed=1
    done
}
stop_leftovers job
stop_leftovers slurmstepd

if [ "$failed" -ne 0 ]; then
    log "some processes could not be stopped"
    exit 1
fi
log "cluster stopped (state kept in $SLURM_TEST_DIR)"
