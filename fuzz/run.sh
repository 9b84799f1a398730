#!/usr/bin/env bash
# Runs every fuzz target (or those named in $TARGETS) for a bounded time each,
# one after the other, on one core: `fuzz/run.sh [seconds-per-target]`
# (default 600). Needs a nightly toolchain and cargo-fuzz
# (`cargo install cargo-fuzz --locked`).
#
# Each run is a single libFuzzer process at a time (`-fork=1`: one worker,
# the form of `-jobs=1 -workers=1` that keeps going after a finding, so one
# run collects every crash, timeout and OOM instead of stopping at the first).
# An input taking longer than $TIMEOUT_S seconds (default 5) or growing the
# process past $RSS_LIMIT_MB (default 1024; one allocation past it too) is a
# finding, like a panic. Findings land in `fuzz/artifacts/<target>/`; new
# coverage is merged into `fuzz/corpus/<target>/`. Logs and a summary (seconds,
# executions, corpus size, findings per target) go to `fuzz/logs/`.
#
# Environment: TARGETS, TIMEOUT_S, RSS_LIMIT_MB, MAX_LEN (libFuzzer -max_len;
# default: its own, 4096 or the largest seed), SANITIZER (none by default: the
# crate has no unsafe code and panics are what we look for; `address` works too),
# NO_BUILD=1 (run the binaries already built, as `cargo fuzz run` would, so the
# sources can change while a long run goes on).
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-600}
targets=${TARGETS:-"format_compile format_file line_parser envelope state"}
timeout_s=${TIMEOUT_S:-5}
rss_limit_mb=${RSS_LIMIT_MB:-1024}
sanitizer=${SANITIZER:-none}
max_len=${MAX_LEN:+-max_len=$MAX_LEN}

# Debug assertions and overflow checks on: CI replays the corpus in a debug build, where they are on.
build_flags=(--sanitizer "$sanitizer" --debug-assertions)
if [[ -z "${NO_BUILD:-}" ]]; then
    cargo +nightly fuzz build "${build_flags[@]}"
fi
bin_dir=target/x86_64-unknown-linux-gnu/release

mkdir -p logs
summary=logs/summary.tsv
printf 'target\tseconds\texecutions\tcorpus_files\tcorpus_bytes\tcrashes\ttimeouts\tooms\n' >"$summary"
for t in $targets; do
    mkdir -p "corpus/$t" "artifacts/$t"
    log="logs/$t.log"
    start=$(date +%s)
    # shellcheck disable=SC2086 # $max_len is empty or one flag
    "$bin_dir/$t" -artifact_prefix="artifacts/$t/" "corpus/$t" \
        -max_total_time="$seconds" -fork=1 \
        -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
        -timeout="$timeout_s" -rss_limit_mb="$rss_limit_mb" -malloc_limit_mb="$rss_limit_mb" \
        $max_len -print_final_stats=1 >"$log" 2>&1 || true
    end=$(date +%s)
    # Fork mode's status lines: `#EXECS: cov: .. corp: N/.. .. oom/timeout/crash: O/T/C time: ..`.
    last=$(grep -E '^#[0-9]+: cov:' "$log" | tail -n 1 || true)
    execs=$(sed -E 's/^#([0-9]+):.*/\1/' <<<"$last")
    read -r ooms timeouts crashes < <(sed -E 's#.*oom/timeout/crash: ([0-9]+)/([0-9]+)/([0-9]+).*#\1 \2 \3#' <<<"$last" || echo "? ? ?")
    files=$(find "corpus/$t" -type f | wc -l)
    bytes=$(du -sb "corpus/$t" | cut -f1)
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$((end - start))" "${execs:-?}" "$files" "$bytes" \
        "${crashes:-?}" "${timeouts:-?}" "${ooms:-?}" | tee -a "$summary"
done
echo "findings: fuzz/artifacts/<target>/ (copy each into fuzz/regressions/<target>/ once fixed)"
