#!/usr/bin/env bash
# Runs the TabularMlp sample as an OpenMPI job: one process per rank, the same program that runs in-process ranks.
#   samples/mpi/run-tabular-mlp.sh                 2 ranks on this machine
#   samples/mpi/run-tabular-mlp.sh hosts.txt 4     4 ranks over the machines in an OpenMPI hostfile
# Every machine needs OpenMPI (apt-get install -y openmpi-bin libopenmpi-dev), the .NET runtime, and the built
# sample at the same path (a shared folder, or the same checkout built on each); ranks reach each other over SSH/TCP.
set -euo pipefail
cd "$(dirname "$0")/../.."
hostfile="${1:-}"
ranks="${2:-2}"

dotnet build samples/TabularMlp -c Release >/dev/null
app="$(pwd)/samples/TabularMlp/bin/Release/net10.0/TabularMlp.dll"

args=(-np "$ranks" --bind-to none)
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
[ "$(id -u)" = 0 ] && args+=(--allow-run-as-root)
# More ranks than cores on one machine (as on a 2-core box) needs --oversubscribe.
[ -z "$hostfile" ] && [ "$ranks" -gt "$(nproc)" ] && args+=(--oversubscribe)
exec mpirun "${args[@]}" dotnet "$app"
