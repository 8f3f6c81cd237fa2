#!/usr/bin/env bash
# A throwaway single-node SLURM cluster (Debian's slurm-wlm and munge) for
# tests/test_slurm.py, as root; `nox -s slurm` runs it. No accounting database, so
# `sacct` (and with it the launcher's --wait) is not available here.
#
#   tests/slurm/single-node.sh start DIR     writes DIR/slurm.conf, starts munged, slurmctld, slurmd
#   tests/slurm/single-node.sh stop DIR      stops them
set -euo pipefail
action=${1:?start or stop}
dir=$(realpath -m "${2:?a directory for the state of the cluster}")
export SLURM_CONF="$dir/slurm.conf"

if [ "$action" = stop ]; then
    for pid in "$dir/slurmd.pid" "$dir/slurmctld.pid"; do
        [ -f "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true
    done
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge
fi
mkdir -p "$dir/state" "$dir/spool" /run/munge
chown -R munge:munge /run/munge /var/log/munge /var/lib/munge /etc/munge
[ -f /etc/munge/munge.key ] || runuser -u munge -- /usr/sbin/mungekey --create
if ! munge -n >/dev/null 2>&1; then
    runuser -u munge -- /usr/sbin/munged
fi
host=$(hostname -s)
cat > "$SLURM_CONF" <<EOF
ClusterName=rnnsuite-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
ReturnToService=2
MpiDefault=none
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld
slurmd
for _ in $(seq 1 60); do
    sinfo -h -o %t 2>/dev/null | grep -q idle && { echo "SLURM_CONF=$SLURM_CONF"; exit 0; }
    sleep 1
done
echo "the single-node SLURM did not come up; see $dir/slurmctld.log and $dir/slurmd.log" >&2
exit 1
