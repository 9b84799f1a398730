#!/usr/bin/env bash
# Shrinks `fuzz/corpus/<target>/` to what is worth committing: libFuzzer's
# coverage-preserving merge (`-merge=1`, what `cargo fuzz cmin` runs), then the
# seeds plus the smallest kept inputs up to $BUDGET bytes per target (default
# 80000), so the committed corpora stay a few hundred KB in all.
# `fuzz/minimize.sh [target...]` (default: every target); runs the binaries
# `run.sh` built.
set -euo pipefail
cd "$(dirname "$0")"
budget=${BUDGET:-80000}
bin_dir=target/x86_64-unknown-linux-gnu/release
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(format_compile format_file line_parser envelope state)
for t in "${targets[@]}"; do
    merged=$(mktemp -d)
    "$bin_dir/$t" -merge=1 -timeout=5 -rss_limit_mb=1024 "$merged" "corpus/$t" >/dev/null 2>&1
    kept=$(mktemp -d)
    cp corpus/"$t"/seed-* "$kept"/ 2>/dev/null || true
    used=$(cat "$kept"/* 2>/dev/null | wc -c)
    # Smallest first: small inputs are the cheapest to replay and to read.
    while read -r size file; do
        [[ -e "$kept/$(basename "$file")" ]] && continue
        ((used + size > budget)) && break
        cp "$file" "$kept/"
        used=$((used + size))
    done < <(find "$merged" -type f -printf '%s %p\n' | sort -n)
    rm -rf "corpus/$t" "$merged"
    mkdir -p "corpus/$t"
    cp "$kept"/* "corpus/$t/"
    rm -rf "$kept"
    echo "$t: $(find "corpus/$t" -type f | wc -l) files, $used bytes"
done
