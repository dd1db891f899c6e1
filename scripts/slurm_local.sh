#!/usr/bin/env bash
# A two-node Slurm cluster on this machine, for the slurm test tier and for trying the job scripts of
# `python -m launchers.make slurm` before a real cluster's queue.
#
#   bash scripts/slurm_local.sh start    install (as root, Debian/Ubuntu) and start munge, slurmctld, slurmd
#   bash scripts/slurm_local.sh stop     stop the daemons this script started
#   bash scripts/slurm_local.sh status   say what runs; exit 0 only when every node takes jobs
#   bash scripts/slurm_local.sh env      print `export SLURM_CONF=...` for sbatch, squeue, scontrol
#
# Idempotent: `start` on a running cluster with the same configuration does nothing. Everything lives in
# MULTIJET_SLURM_DIR (default /var/tmp/multijet-slurm): slurm.conf, the controller's state, the nodes' spools
# and every log (log/slurmctld.log, log/slurmd-<node>.log, log/munged.log, log/jobcomp.log). The system's
# /etc/slurm is left alone: the Slurm commands find this cluster through SLURM_CONF (`eval "$(bash
# scripts/slurm_local.sh env)"`), and jobs inherit it.
#
# Each node is this host with its real CPU count and memory (`slurmd -C`). Node 1 is this host under its own
# name; node 2, `<host>-2`, is a second slurmd on 127.0.0.2 with its own port, started in a UTS namespace
# whose host name is `<host>-2`, so that its tasks see another host (records count two nodes) while sharing
# this host's cores, memory and network. (Several slurmd under one host name need a Slurm built with
# --enable-multiple-slurmd; a host name and an address of its own per node need nothing special.)
# TmpFS=<dir>/tmp/%n keeps the nodes' PMIx directories apart. MULTIJET_SLURM_NODES=1 starts one node only.
#
# MpiDefault=none, as many sites leave it: a job step gets a PMI only when it asks for one (`srun
# --mpi=pmix`), as the generated scripts do. Root is needed: slurmd starts job steps as the submitting user,
# munged runs as user munge, and node 2 needs a namespace.
set -euo pipefail
dir=${MULTIJET_SLURM_DIR:-/var/tmp/multijet-slurm}
conf=$dir/slurm.conf
ctld_port=${MULTIJET_SLURM_PORT:-6817}  # slurmd of node i listens on ctld_port + i
n_nodes=${MULTIJET_SLURM_NODES:-2}
host=$(hostname -s)
packages="slurm-wlm munge"

say() { echo "slurm_local: $*"; }
die() { echo "slurm_local: $*" >&2; exit 1; }

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# Node i (1-based): this host's name for node 1, <host>-i for the others.
node_name() { if [ "$1" = 1 ]; then echo "$host"; else echo "$host-$1"; fi; }

install_packages() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null \
        && command -v munged >/dev/null; then
        return
    fi
    [ "$(id -u)" = 0 ] || die "Slurm is missing: run 'sudo apt-get install $packages' and try again"
    command -v apt-get >/dev/null || die "Slurm is missing and this is not Debian/Ubuntu: install Slurm" \
        "(slurmctld, slurmd, sbatch) and munge with your system's packages"
    say "installing $packages from the distribution's packages"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >/dev/null
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    munge_works && return  # the system's munged, or ours from an earlier start, answers
    if [ ! -f /etc/munge/munge.key ]; then
        mungekey --create >/dev/null 2>&1 || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null
    fi
    chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge
    install -o munge -g munge -m 0640 /dev/null "$dir/log/munged.log"
    install -d -o munge -g munge -m 0755 "$dir/run/munge"  # munged writes its pid file as user munge
    runuser -u munge -- /usr/sbin/munged --log-file="$dir/log/munged.log" --pid-file="$dir/run/munge/munged.pid" \
        || die "munged did not start; see $dir/log/munged.log"
    for _ in $(seq 50); do munge_works && return; sleep 0.1; done
    die "munged does not answer; see $dir/log/munged.log"
}

write_conf() {
    local hw i
    hw=$(slurmd -C | head -1 | sed -e 's/^NodeName=[^ ]*//')  # " CPUs=... RealMemory=..." of this host
    cat >"$conf.new" <<EOF
# Written by scripts/slurm_local.sh: a $n_nodes-node Slurm cluster on $host, for the slurm test tier.
ClusterName=multijet-local
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/slurmd-%n
TmpFS=$dir/tmp/%n
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
# As many sites leave it: a step started without --mpi gets no PMI.
MpiDefault=none
# No cgroups needed (containers, CI): processes tracked by their parent chain, tasks bound by affinity.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SwitchType=switch/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
# No accounting database (sacct is not available here): finished jobs stay visible to scontrol for a day,
# and each is a line of log/jobcomp.log.
MinJobAge=86400
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.log
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
# A step that fails or reaches its time limit is killed 5 s after SIGTERM.
KillWait=5
InactiveLimit=0
EOF
    for i in $(seq "$n_nodes"); do
        echo "NodeName=$(node_name "$i") NodeHostname=$(node_name "$i") NodeAddr=127.0.0.$i" \
             "Port=$((ctld_port + i))$hw State=UNKNOWN" >>"$conf.new"
    done
    echo "PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP" >>"$conf.new"
}

start_node() {
    local name
    name=$(node_name "$1")
    mkdir -p "$dir/spool/slurmd-$name" "$dir/tmp/$name"
    if [ "$1" = 1 ]; then
        slurmd -f "$conf" -N "$name"
    else  # under its own host name, which everything it starts sees
        unshare --uts sh -c 'hostname "$1" && exec slurmd -f "$2" -N "$1"' sh "$name" "$conf"
    fi || die "slurmd of node $name did not start; see $dir/log/slurmd-$name.log"
}

# The nodes' states: one word when they agree (idle), else a comma-separated list.
node_state() { SLURM_CONF=$conf sinfo -h -N -o '%t' 2>/dev/null | sort -u | paste -sd, -; }

status() {
    local ok=0 i name state
    if alive "$dir/run/slurmctld.pid"; then say "slurmctld runs (pid $(cat "$dir/run/slurmctld.pid"))"
    else say "slurmctld is not running"; ok=1; fi
    for i in $(seq "$n_nodes"); do
        name=$(node_name "$i")
        if alive "$dir/run/slurmd-$name.pid"; then say "slurmd of node $name runs (pid $(cat "$dir/run/slurmd-$name.pid"))"
        else say "slurmd of node $name is not running"; ok=1; fi
    done
    if [ "$ok" = 0 ]; then
        state=$(node_state)
        say "node states: ${state:-unknown}; logs in $dir/log; export SLURM_CONF=$conf"
        [[ ",$state," =~ ,(down|drain|drng|fail|unk|unknown|inval)[*~#]?, ]] && ok=1
        [ -n "$state" ] || ok=1
    fi
    return $ok
}

# Stop the daemons whose pid files are given (those this script started).
stop_daemons() {
    local pidfile pid
    for pidfile in "$@"; do
        alive "$pidfile" || continue
        pid=$(cat "$pidfile")
        kill "$pid"
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$pid" 2>/dev/null; then  # stuck (a slurmd whose munged went away): no more waiting
            kill -9 "$pid"
            say "killed $(basename "$pidfile" .pid) (pid $pid): it did not end within 10 s of SIGTERM"
        else
            say "stopped $(basename "$pidfile" .pid) (pid $pid)"
        fi
        rm -f "$pidfile"
    done
}

stop_slurm() { stop_daemons "$dir"/run/slurmd-*.pid "$dir/run/slurmctld.pid"; }

# munged too if this script started it (its pid file is here); a system's munged is left alone.
stop() { stop_slurm; stop_daemons "$dir/run/munge/munged.pid"; }

start() {
    install_packages
    [ "$(id -u)" = 0 ] || die "starting the local cluster needs root (slurmd, munged, a namespace for node 2)"
    mkdir -p "$dir"/{log,run,state,spool,tmp}
    start_munge
    write_conf
    if cmp -s "$conf.new" "$conf" && status >/dev/null; then
        rm -f "$conf.new"
        say "already running: $(SLURM_CONF=$conf sinfo -h -o %N); logs in $dir/log; export SLURM_CONF=$conf"
        return
    fi
    stop_slurm
    mv "$conf.new" "$conf"
    # -i: start from an empty queue (the jobs of an earlier start went with their processes).
    slurmctld -i -f "$conf" || die "slurmctld did not start; see $dir/log/slurmctld.log"
    local i
    for i in $(seq "$n_nodes"); do start_node "$i"; done
    for _ in $(seq 300); do
        if [ "$(node_state)" = idle ]; then
            say "ready: $n_nodes node(s), $(SLURM_CONF=$conf sinfo -h -o %N); logs in $dir/log;" \
                "export SLURM_CONF=$conf"
            return
        fi
        sleep 0.1
    done
    die "the nodes did not come up (states: $(node_state)); see $dir/log"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$conf" ;;
    *) echo "usage: bash scripts/slurm_local.sh start | stop | status | env" >&2; exit 2 ;;
esac
