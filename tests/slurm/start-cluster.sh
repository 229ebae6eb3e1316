#!/usr/bin/env bash
# Start a real, single-node SLURM cluster on this machine, for tests and CI.
#
#   sudo tests/slurm/start-cluster.sh          # installs packages if needed, starts daemons
#   source "${SLURM_TEST_DIR:-/tmp/mnist-xp-slurm}/env.sh"
#   sbatch --wrap 'hostname'; squeue; sacct -S now-1hour
#   sudo tests/slurm/stop-cluster.sh           # stops what this script started
#
# Everything (configs, logs, spool, state, a private MariaDB, munge key and
# socket, PID files) lives in one state folder, $SLURM_TEST_DIR (default
# /tmp/mnist-xp-slurm). No system-wide config file (/etc/slurm, /etc/munge,
# /etc/mysql) is used or modified, and no system service is started.
#
# Daemons started, in order:  munged -> mariadbd -> slurmdbd -> slurmctld -> slurmd
# Their PIDs are recorded in $SLURM_TEST_DIR/pids/<name>.pid.
#
# Why each piece is needed:
#   munged     authentication between all SLURM components (and the CLI tools)
#   mariadbd   storage for the accounting daemon
#   slurmdbd   accounting: `sacct` only works with it, and experimaestro's
#              SlurmLauncher polls `sacct` to follow jobs (without slurmdbd,
#              sacct says "accounting disabled" and the launcher waits forever)
#   slurmctld  the controller (scheduler) - sbatch/squeue/scancel talk to it
#   slurmd     the compute-node daemon that actually runs the jobs
#
# Idempotent: a daemon whose recorded PID is still alive is left alone (the
# config files are rewritten identically); a second run only checks that the
# node is idle and prints the environment. A stopped cluster restarts with
# its accounting history but an empty queue (see step 5). It also restarts a
# single daemon stopped with `stop-cluster.sh NAME`; the jobs go on running
# meanwhile (slurmctld then takes its saved queue back, see step 5):
#
#   sudo tests/slurm/stop-cluster.sh slurmdbd; sleep 30; sudo tests/slurm/start-cluster.sh
#
# A failed start leaves nothing behind: on any error (or Ctrl-C) the daemons
# launched by this run are stopped again (stop-cluster.sh NAME...) before it
# exits non-zero; those that were already running are left alone.
#
# Environment variables (all optional):
#   SLURM_TEST_DIR       state folder                       (/tmp/mnist-xp-slurm)
#   SLURM_TEST_CLUSTER   ClusterName, lowercase             (mnistxp)
#   SLURM_TEST_NODE      node name                          (localnode)
#   SLURM_TEST_PORT_BASE slurmctld port; slurmd = +1, slurmdbd = +2   (6817)
#   SLURM_TEST_DB_PORT   private MariaDB port on 127.0.0.1  (16306)
#   SLURM_TEST_TIMEOUT   seconds to wait for each daemon    (60)
#
# Output: log lines go to stderr; the `export ...` lines the caller needs go to
# stdout (so `eval "$(start-cluster.sh)"` also works) and to $SLURM_TEST_DIR/env.sh.

set -euo pipefail

SLURM_TEST_DIR="${SLURM_TEST_DIR:-/tmp/mnist-xp-slurm}"
CLUSTER="${SLURM_TEST_CLUSTER:-mnistxp}"
NODE="${SLURM_TEST_NODE:-localnode}"
PORT_BASE="${SLURM_TEST_PORT_BASE:-6817}"
DB_PORT="${SLURM_TEST_DB_PORT:-16306}"
TIMEOUT="${SLURM_TEST_TIMEOUT:-60}"

CTLD_PORT="$PORT_BASE"
SLURMD_PORT="$((PORT_BASE + 1))"
DBD_PORT="$((PORT_BASE + 2))"

# Layout of the state folder
ETC="$SLURM_TEST_DIR/etc"         # slurm.conf, slurmdbd.conf, gres.conf, my.cnf
LOGS="$SLURM_TEST_DIR/log"        # one log file per daemon
PIDS="$SLURM_TEST_DIR/pids"       # one PID file per daemon (used by stop-cluster.sh)
MUNGE="$SLURM_TEST_DIR/munge"     # munge key, socket, seed
DB="$SLURM_TEST_DIR/mariadb"      # MariaDB datadir + socket
SPOOL="$SLURM_TEST_DIR/spool"     # slurmd spool
STATE="$SLURM_TEST_DIR/state"     # slurmctld state save location
DEV="$SLURM_TEST_DIR/dev"         # fake GPU device files

MUNGE_SOCKET="$MUNGE/munge.socket"
DB_SOCKET="$DB/mysqld.sock"
DB_USER=slurm
DB_PASS=slurm-test-only   # MariaDB only listens on 127.0.0.1: a fixed password is fine
DB_NAME=slurm_acct_db

export SLURM_CONF="$ETC/slurm.conf"

log() { printf '[slurm-test] %s\n' "$*" >&2; }
die() { printf '[slurm-test] ERROR: %s\n' "$*" >&2; exit 1; }

# Print the end of each log file to help understand a failure.
show_logs() {
    local f
    for f in "$LOGS"/*.log; do
        [ -f "$f" ] || continue
        case "$f" in *mariadb-install-db.log) continue ;; esac  # only noise once done
        printf '\n----- last lines of %s -----\n' "$f" >&2
        tail -n 20 "$f" >&2 || true
    done
}

# wait_for DESCRIPTION DAEMON COMMAND...: poll COMMAND until it succeeds.
# Fail, printing the log tails, after $TIMEOUT seconds or as soon as DAEMON
# (the daemon just started; "-" for none) has written its PID file and died.
wait_for() {
    local what="$1" daemon="$2"; shift 2
    local deadline=$((SECONDS + TIMEOUT)) problem=""
    until "$@" >/dev/null 2>&1; do
        if [ "$daemon" != - ] && [ -s "$PIDS/$daemon.pid" ] && ! is_running "$daemon"; then
            problem="$daemon exited while waiting for: $what"
        elif [ "$SECONDS" -ge "$deadline" ]; then
            problem="timed out after ${TIMEOUT}s waiting for: $what"
        fi
        if [ -n "$problem" ]; then
            log "$problem"
            show_logs
            die "cluster start failed (logs are in $LOGS)"
        fi
        sleep 0.2
    done
}

# is_running NAME: true when $PIDS/NAME.pid holds the PID of a live process
# named NAME. Checking the name guards against PID reuse after a reboot or a
# crash; a zombie ('Z' in /proc/PID/stat) counts as dead, since the container
# init may take a moment to reap it.
is_running() {
    local name="$1" pid state
    [ -s "$PIDS/$name.pid" ] || return 1
    pid="$(tr -dc '0-9' < "$PIDS/$name.pid")"
    [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] || return 1
    [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ] || return 1
    # Field 3 of /proc/PID/stat is the state; field 2 "(comm)" has no spaces here.
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [ "$state" != Z ]
}

# Cleanup of a failed start. STARTED lists the daemons this run launched (each
# is added just before its launch, so that one that hangs while starting is
# also stopped); on a non-zero exit, stop-cluster.sh stops exactly those (from
# their PID files, or by name and SLURM_CONF when a daemon has not written its
# PID file yet). A successful run leaves everything running.
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STARTED=()
REMOVE_POLICY_RC=0   # 1 once this run has created /usr/sbin/policy-rc.d
launching() { STARTED+=("$1"); }
on_exit() {
    local status=$?
    trap - EXIT INT TERM HUP
    [ "$REMOVE_POLICY_RC" -eq 0 ] || rm -f /usr/sbin/policy-rc.d
    if [ "$status" -ne 0 ] && [ "${#STARTED[@]}" -gt 0 ]; then
        log "start failed: stopping what this run started (${STARTED[*]})"
        SLURM_TEST_DIR="$SLURM_TEST_DIR" "$HERE/stop-cluster.sh" "${STARTED[@]}" \
            || log "WARNING: some of them could not be stopped"
    fi
    exit "$status"
}
trap on_exit EXIT
# (bash runs the EXIT trap on a signal only when the signal is trapped)
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# 0. Packages
# ---------------------------------------------------------------------------
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and runs the daemons as root)"

PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    log "installing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Forbid the packages' maintainer scripts from starting their system
    # services (a policy-rc.d that exits 101 means "action forbidden"): we run
    # our own private daemons instead. Docker images often already ship one.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        REMOVE_POLICY_RC=1   # removed on exit (by on_exit), even if apt-get fails
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
    fi
    # Only refresh the package lists when needed: the packages are unknown, or
    # the install fails (stale lists pointing at versions no longer served).
    if ! apt-cache show "${missing[@]}" >/dev/null 2>&1; then
        log "apt-get update"
        apt-get update -qq >&2
    fi
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2; then
        log "install failed: apt-get update, then retry"
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    fi
    log "packages installed"
fi

# ---------------------------------------------------------------------------
# 1. State folder and configuration
# ---------------------------------------------------------------------------
mkdir -p "$ETC" "$LOGS" "$PIDS" "$MUNGE" "$DB" "$SPOOL/slurmd" "$STATE" "$DEV"
# Jobs may run as non-root users: they must be able to reach the munge socket
# (munge requires its socket folder to be exactly 0755) and read slurm.conf.
chmod 755 "$SLURM_TEST_DIR" "$ETC" "$MUNGE" "$DEV"

HOST="$(hostname -s)"
# SLURM uses the explicit 127.0.0.1 addresses below, so the hostname does not
# have to resolve for SLURM itself; but some tools (and MariaDB's installer)
# look it up, so in a container where it does not resolve we add it.
if ! getent hosts "$HOST" >/dev/null 2>&1; then
    log "hostname '$HOST' does not resolve: adding '127.0.0.1 $HOST' to /etc/hosts"
    echo "127.0.0.1 $HOST" >> /etc/hosts
fi

# Fake GPUs: SLURM refuses a GPU request (--gpus-per-node, --gres=gpu:N) at
# submission when no node has GPU GRES. gres.conf needs device files; a
# character device with the major/minor of /dev/null (1,3) is harmless.
for i in 0 1; do
    [ -c "$DEV/fakegpu$i" ] || { rm -f "$DEV/fakegpu$i"; mknod "$DEV/fakegpu$i" c 1 3; }
    chmod 666 "$DEV/fakegpu$i"
done

NCPUS="$(nproc)"
# Declare a bit less memory than the machine has: a node that reports less
# memory than configured is drained ("Low RealMemory").
MEM_MB="$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)"
REAL_MEM=$((MEM_MB * 90 / 100))

cat > "$ETC/slurm.conf" <<EOF
# Generated by tests/slurm/start-cluster.sh - single-node test cluster.
ClusterName=$CLUSTER
# The controller is this machine; the explicit address avoids any DNS lookup.
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# Everything runs as root (simplest: slurmdbd.conf must be owned by SlurmUser).
SlurmUser=root
SlurmdUser=root

# Private munge daemon: its socket is not the system default one.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET

StateSaveLocation=$STATE
SlurmdSpoolDir=$SPOOL/slurmd
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

# No cgroups in a container: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true

# Accounting through slurmdbd (needed by sacct). The slurmctld->slurmdbd
# connection ignores AuthInfo: the munge socket must be given here instead.
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
JobAcctGatherType=jobacct_gather/linux
# Also record GPU allocations (sacct -o AllocTRES shows gres/gpu=N).
AccountingStorageTRES=gres/gpu
JobCompType=jobcomp/none

# Schedule by cores and memory, so that several jobs share the node.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, each job would get the whole node memory -> one job at a time.
DefMemPerCPU=1024
# Fake GPUs (see gres.conf).
GresTypes=gpu

# Fast test turnaround:
#  - start jobs as soon as they are submitted (default: batches every 3 s)
SchedulerParameters=batch_sched_delay=0
#  - a node that was down comes back by itself when slurmd registers
ReturnToService=2
#  - short timeouts; jobs are killed at their time limit, without grace time.
#    NB: time limits are in whole minutes (--time=0:20 is rounded up to 1 min)
#    and slurmctld checks them every 30 s, so a TIMEOUT happens 60-90 s in.
SlurmctldTimeout=30
SlurmdTimeout=30
MessageTimeout=10
KillWait=5
OverTimeLimit=0
InactiveLimit=0
#  - finished jobs leave squeue after 30 s (sacct keeps them)
MinJobAge=30
# The node's hardware layout may differ from the simple CPUs= line below
# (sockets, threads): trust this file and never drain the node for that.
SlurmdParameters=config_overrides
# slurmctld always starts with an empty queue (see step 5); job IDs continue
# after the last one in the accounting database (updated at each start).
FirstJobId=$(cat "$STATE/first_job_id" 2>/dev/null || echo 1)

# The node name is fixed (not the hostname): slurmd is started with -N $NODE.
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$HOST CPUs=$NCPUS RealMemory=$REAL_MEM Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
# One-minute limit, for time-limit (TIMEOUT) tests.
PartitionName=short Nodes=$NODE Default=NO MaxTime=1 State=UP
EOF

cat > "$ETC/gres.conf" <<EOF
# Two fake GPUs (character devices equivalent to /dev/null).
NodeName=$NODE Name=gpu File=$DEV/fakegpu[0-1]
EOF

# slurmdbd.conf holds the database password: slurmdbd refuses to start unless
# it is mode 0600 and owned by SlurmUser (root here).
(umask 077; cat > "$ETC/slurmdbd.conf" <<EOF
# Generated by tests/slurm/start-cluster.sh
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
# slurmdbd only accepts DbdHost = its own hostname or "localhost".
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$LOGS/slurmdbd.log
PidFile=$PIDS/slurmdbd.pid
DebugLevel=info
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=$DB_USER
StoragePass=$DB_PASS
StorageLoc=$DB_NAME
EOF
)
chmod 600 "$ETC/slurmdbd.conf"

cat > "$ETC/my.cnf" <<EOF
# Private MariaDB for slurmdbd (generated by tests/slurm/start-cluster.sh)
[mariadbd]
user=root
datadir=$DB/data
socket=$DB_SOCKET
pid-file=$PIDS/mariadbd.pid
log-error=$LOGS/mariadbd.log
# Only reachable from this machine, on a non-standard port (no clash with a
# system MariaDB on 3306).
bind-address=127.0.0.1
port=$DB_PORT
skip-name-resolve
# Values recommended by slurmdbd (it logs an error for a smaller buffer pool;
# the pool is allocated lazily, the real memory use stays ~130 MB).
innodb_buffer_pool_size=1G
innodb_lock_wait_timeout=900
[client]
socket=$DB_SOCKET
EOF

# ---------------------------------------------------------------------------
# 2. munged
# ---------------------------------------------------------------------------
munge_ok() { munge -n --socket="$MUNGE_SOCKET" | unmunge --socket="$MUNGE_SOCKET"; }

if is_running munged; then
    log "munged already running (pid $(cat "$PIDS/munged.pid"))"
else
    if [ ! -s "$MUNGE/munge.key" ]; then
        log "creating munge key"
        (umask 077; head -c 1024 /dev/urandom > "$MUNGE/munge.key")
    fi
    # The key must be owned by the user munged runs as (root), mode 0400.
    chown root:root "$MUNGE/munge.key"
    chmod 400 "$MUNGE/munge.key"
    rm -f "$MUNGE_SOCKET" "$MUNGE_SOCKET.lock" "$PIDS/munged.pid"
    log "starting munged"
    launching munged
    # Runs as root (like the other daemons), so the key is root's. --force only
    # downgrades munged's "insecure permissions" checks on the key/socket/log
    # folders to warnings, in case $SLURM_TEST_DIR sits somewhere group- or
    # world-writable (the default under /tmp passes them anyway).
    munged --force \
        --socket="$MUNGE_SOCKET" \
        --key-file="$MUNGE/munge.key" \
        --pid-file="$PIDS/munged.pid" \
        --log-file="$LOGS/munged.log" \
        --seed-file="$MUNGE/munged.seed"
    wait_for "munged to answer on $MUNGE_SOCKET" munged munge_ok
    log "munged started (pid $(cat "$PIDS/munged.pid"))"
fi

# ---------------------------------------------------------------------------
# 3. MariaDB (private datadir, 127.0.0.1:$DB_PORT + socket)
# ---------------------------------------------------------------------------
if is_running mariadbd; then
    log "mariadbd already running (pid $(cat "$PIDS/mariadbd.pid"))"
else
    if [ ! -d "$DB/data/mysql" ]; then
        log "initialising MariaDB datadir $DB/data"
        rm -rf "$DB/data"
        mariadb-install-db --defaults-file="$ETC/my.cnf" --skip-test-db \
            --auth-root-authentication-method=socket > "$LOGS/mariadb-install-db.log" 2>&1 \
            || { tail -n 30 "$LOGS/mariadb-install-db.log" >&2; die "mariadb-install-db failed"; }
    fi
    rm -f "$PIDS/mariadbd.pid"
    log "starting mariadbd on 127.0.0.1:$DB_PORT"
    launching mariadbd
    # mariadbd does not daemonize: detach it from this shell (new session,
    # stdio closed) so that it survives the script and does not hold the
    # caller's pipes open. It writes its own PID file (pid-file above).
    setsid nohup mariadbd --defaults-file="$ETC/my.cnf" </dev/null >/dev/null 2>&1 &
    wait_for "mariadbd to answer on $DB_SOCKET" mariadbd \
        mariadb-admin --defaults-file="$ETC/my.cnf" -uroot ping
    wait_for "mariadbd PID file" - is_running mariadbd
    log "mariadbd started (pid $(cat "$PIDS/mariadbd.pid"))"
fi

# Database and user for slurmdbd (idempotent). With skip-name-resolve, a TCP
# client from 127.0.0.1 is matched as 'slurm'@'127.0.0.1'.
mariadb --defaults-file="$ETC/my.cnf" -uroot <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$DB_PASS';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'127.0.0.1';
GRANT ALL PRIVILEGES ON $DB_NAME.* TO '$DB_USER'@'localhost';
EOF

# ---------------------------------------------------------------------------
# 4. slurmdbd, then register the cluster
# ---------------------------------------------------------------------------
if is_running slurmdbd; then
    log "slurmdbd already running (pid $(cat "$PIDS/slurmdbd.pid"))"
else
    rm -f "$PIDS/slurmdbd.pid"
    log "starting slurmdbd on 127.0.0.1:$DBD_PORT"
    launching slurmdbd
    # slurmdbd finds slurmdbd.conf next to $SLURM_CONF; it daemonizes itself.
    slurmdbd
    wait_for "slurmdbd to answer" slurmdbd sacctmgr -n list cluster
    log "slurmdbd started (pid $(cat "$PIDS/slurmdbd.pid"))"
fi

if [ -z "$(sacctmgr -n -P list cluster "$CLUSTER" format=cluster 2>/dev/null)" ]; then
    log "registering cluster '$CLUSTER' in the accounting database"
    sacctmgr -i add cluster "$CLUSTER" >&2
fi

# ---------------------------------------------------------------------------
# 5. slurmctld and slurmd
# ---------------------------------------------------------------------------
if is_running slurmctld; then
    log "slurmctld already running (pid $(cat "$PIDS/slurmctld.pid"))"
else
    rm -f "$PIDS/slurmctld.pid"
    # Start with an empty queue (-c): after an unclean stop, the saved state
    # would bring back "running" jobs whose processes are gone, holding the
    # node. But keep job IDs unique across restarts, so that sacct (which
    # shows the most recent job of a given ID) never mixes up two jobs.
    # Except when slurmd still runs (only the controller was stopped): its
    # jobs are real, and the saved queue lets the new controller take them
    # over (-c would cancel them).
    next_id="$(mariadb --defaults-file="$ETC/my.cnf" -uroot -N -B "$DB_NAME" \
        -e "SELECT COALESCE(MAX(id_job), 0) + 1 FROM ${CLUSTER}_job_table" 2>/dev/null || echo 1)"
    echo "$next_id" > "$STATE/first_job_id"
    sed -i "s/^FirstJobId=.*/FirstJobId=$next_id/" "$SLURM_CONF"
    launching slurmctld
    if is_running slurmd; then
        log "starting slurmctld on 127.0.0.1:$CTLD_PORT (slurmd runs: saved queue kept)"
        slurmctld
    else
        log "starting slurmctld on 127.0.0.1:$CTLD_PORT (empty queue, next job ID $next_id)"
        slurmctld -c
    fi
    wait_for "slurmctld to answer" slurmctld scontrol ping
    log "slurmctld started (pid $(cat "$PIDS/slurmctld.pid"))"
fi

if is_running slurmd; then
    log "slurmd already running (pid $(cat "$PIDS/slurmd.pid"))"
else
    rm -f "$PIDS/slurmd.pid"
    log "starting slurmd (node $NODE, $NCPUS CPUs, ${REAL_MEM} MB, 2 fake GPUs)"
    launching slurmd
    # -N: our node name is not the hostname.
    slurmd -N "$NODE"
    wait_for "slurmd PID file" - is_running slurmd
    log "slurmd started (pid $(cat "$PIDS/slurmd.pid"))"
fi

node_idle() { sinfo -h -n "$NODE" -o '%T' | grep -qx 'idle\|mixed\|allocated'; }
# (mixed/allocated are fine too, when a re-run finds jobs running)
wait_for "node $NODE to be idle in sinfo" slurmd node_idle
log "cluster '$CLUSTER' is up: $(sinfo -h -n "$NODE" -o '%N %T %C(A/I/O/T) %G' | head -n1)"

# ---------------------------------------------------------------------------
# 6. Environment for the callers
# ---------------------------------------------------------------------------
cat > "$SLURM_TEST_DIR/env.sh" <<EOF
# Source this file to use the test cluster (sbatch, squeue, sacct, ...).
export SLURM_TEST_DIR="$SLURM_TEST_DIR"
export SLURM_CONF="$SLURM_CONF"
EOF
chmod 644 "$SLURM_TEST_DIR/env.sh"
log "environment written to $SLURM_TEST_DIR/env.sh (source it)"
cat "$SLURM_TEST_DIR/env.sh"
