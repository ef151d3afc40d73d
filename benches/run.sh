#!/usr/bin/env bash
# Runs every tracewire benchmark with its baselines and prints the ratios
# against the bars set in the issues, as Markdown tables.
#
#   bash benches/run.sh            # all of them
#   bash benches/run.sh core http  # some bench targets (core, sqlx, export,
#                                  # tail, tail_memory, rdkafka, http, grpc,
#                                  # instructions: callgrind, needs valgrind;
#                                  # collect: the collector over loopback)
#
# Criterion benches take CRITERION_ARGS (default: 1 s warm-up, 3 s of
# measurement per benchmark). The pipeline and load benches alternate
# their variants round by round: BENCH_ROUNDS (40; HTTP, gRPC: 5 runs),
# BENCH_WARM_UP_ROUNDS (5), BENCH_HTTP_SECONDS (2 s per run),
# BENCH_HTTP_CONNECTIONS (16), BENCH_HTTP_MAX_REQUESTS (5,000,000 per run);
# for gRPC BENCH_GRPC_SECONDS (2), BENCH_GRPC_CONNECTIONS (2 HTTP/2
# connections), BENCH_GRPC_STREAMS (32 calls in flight),
# BENCH_GRPC_MAX_REQUESTS (5,000,000 per run).
#
# The HTTP (axum) and gRPC (tonic unary) benches run each server in a
# child process pinned to one core with all its threads (the load client
# on another core) and report the CPU time of all the server's threads and
# their context switches per request, next to requests/s. Other load on the machine (builds) shares
# those cores: check the load average printed before and after.
#
# The whole output goes to $target/bench-output.txt and the tables to
# $target/bench-summary.md.
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
target="${CARGO_TARGET_DIR:-$repo/target}"
mkdir -p "$target"
# Where criterion writes its estimates, which the bench targets read back.
export CRITERION_HOME="$target/criterion"
criterion_args=${CRITERION_ARGS:-"--warm-up-time 1 --measurement-time 3"}

benches=("$@")
if [ ${#benches[@]} -eq 0 ]; then
    benches=(core instructions sqlx export tail tail_memory rdkafka http grpc collect)
fi

output="$target/bench-output.txt"
summary="$target/bench-summary.md"
: > "$output"

machine() {
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

echo "building the bench targets…"
cargo bench -p tracewire-benches --no-run --quiet

machine | tee -a "$output"
for bench in "${benches[@]}"; do
    echo "== $bench" | tee -a "$output"
    # shellcheck disable=SC2086
    cargo bench -p tracewire-benches --quiet --bench "$bench" -- $criterion_args 2>&1 | tee -a "$output"
done
machine | tee -a "$output"

{
    echo "## Results ($(date -u '+%Y-%m-%d %H:%M UTC'))"
    echo
    grep -E '^machine:' "$output" | head -1
    grep -E '^(### |\| |\|---)' "$output" | sed 's/^### /\n### /'
} > "$summary"
echo
cat "$summary"
echo
echo "(full output: $output; tables: $summary)"
