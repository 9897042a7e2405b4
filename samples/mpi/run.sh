#!/usr/bin/env bash
# Runs a sample as an OpenMPI job: one process per rank, the same program that runs in-process ranks.
#   samples/mpi/run.sh BertSentiment                  2 ranks on this machine
#   samples/mpi/run.sh TabularMlp hosts.txt 4         4 ranks over the machines in an OpenMPI hostfile
# Every machine needs OpenMPI (apt-get install -y openmpi-bin libopenmpi-dev), the .NET runtime, and the built
# sample at the same path (a shared folder, or the same checkout built on each); ranks reach each other over SSH/TCP.
# Only rank 0's process evaluates and writes files, into the working directory it was started in.
set -euo pipefail
sample="${1:?usage: samples/mpi/run.sh BertSentiment|BertEngineLoop|TabularMlp [hostfile] [ranks]}"
hostfile="${2:-}"
ranks="${3:-2}"
root="$(cd "$(dirname "$0")/../.." && pwd)"

dotnet build "$root/samples/$sample" -c Release >/dev/null
app="$root/samples/$sample/bin/Release/net10.0/$sample.dll"

args=(-np "$ranks" --bind-to none)
[ -n "$hostfile" ] && args+=(--hostfile "$hostfile")
[ "$(id -u)" = 0 ] && args+=(--allow-run-as-root)
# More ranks than cores on one machine (as on a 2-core box) needs --oversubscribe.
[ -z "$hostfile" ] && [ "$ranks" -gt "$(nproc)" ] && args+=(--oversubscribe)
exec mpirun "${args[@]}" dotnet "$app"
