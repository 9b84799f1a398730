#!/usr/bin/env bash
# compare.sh: `strictly report` against the tools a user would reach for instead.
#
# Generates (once) large inputs with strictly-sample into target/bench-data/,
# then runs alternating rounds of
#   strictly   target/release/strictly report -o json FILE   (exit 1 = "not ready": fine)
#   awk        mawk -f benches/peer.awk FILE                  (lab formats only; zcat | for .gz)
#   wc         wc -l FILE                                     (zcat FILE | wc -l for .gz)
# measuring wall time and peak RSS (/usr/bin/time), and prints a markdown table
# of medians with the ratios awk/strictly (how many times faster strictly is
# than the awk) and strictly/wc (how far it is from reading the bytes), each
# row next to issue 11's target for it, with pass/FAIL:
#   lab: awk/strictly >= 10 and strictly/wc <= 3; istio: strictly/wc <= 4;
#   istio-json: strictly/wc <= 6; .gz: strictly <= `zcat | wc -l`; every row: RSS <= 64 MiB;
#   the --big row (lab at 10M lines): the lab targets, so no cost grows with the input.
#
# Usage: benches/compare.sh [--lines N] [--big N] [--callers N] [--rounds N] [--variants LIST]
#                           [--regenerate] [--no-build]
#   --variants  comma-separated, from lab, lab-cert, istio, istio-json (each may end in .gz);
#               default: lab,lab.gz,istio,istio-json (the issue's target set)
#   --lines     lines per variant (default 1000000)
#   --big       also lab at this many lines (default 10000000, ~4.4 GB; 0: none)
#   --callers   caller addresses per destination in the istio variants (default 5000)
# Works from any directory; honours CARGO_TARGET_DIR.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
target="${CARGO_TARGET_DIR:-$root/target}"
data="$target/bench-data"
lines=1000000
big=10000000
callers=5000
rounds=5
variants="lab,lab.gz,istio,istio-json"
regenerate=0
build=1

usage() { sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }
die() { echo "compare.sh: $*" >&2; exit 2; }

while (($#)); do
    case "$1" in
        --lines) lines="${2:?--lines needs a number}"; shift 2 ;;
        --rounds) rounds="${2:?--rounds needs a number}"; shift 2 ;;
        --big) big="${2:?--big needs a number}"; shift 2 ;;
        --callers) callers="${2:?--callers needs a number}"; shift 2 ;;
        --variants) variants="${2:?--variants needs a list}"; shift 2 ;;
        --regenerate) regenerate=1; shift ;;
        --no-build) build=0; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ $lines =~ ^[0-9]+$ ]] || die "--lines $lines: not a number"
[[ $rounds =~ ^[1-9][0-9]*$ ]] || die "--rounds $rounds: not a positive number"
[[ $big =~ ^[0-9]+$ ]] || die "--big $big: not a number"
[[ $callers =~ ^[0-9]+$ ]] || die "--callers $callers: not a number"

# Tools.
if command -v mawk >/dev/null; then
    awk_bin=mawk
else
    awk_bin=awk
    echo "note: mawk not found, the peer runs with $(command -v awk) (apt-get install -y mawk)" >&2
fi
time_bin=""
if [[ -x /usr/bin/time ]]; then
    time_bin=/usr/bin/time
else
    echo "note: /usr/bin/time not found: no peak RSS (apt-get install -y time)" >&2
fi

if ((build)); then
    (cd "$root" && cargo build --release --quiet --bin strictly --bin strictly-sample)
fi
strictly="$target/release/strictly"
sample="$target/release/strictly-sample"
[[ -x $strictly && -x $sample ]] || die "missing $strictly or $sample (build them, or drop --no-build)"

# Inputs: generated once, atomically (an interrupted run leaves no half file behind).
mkdir -p "$data"
IFS=, read -r -a variant_list <<<"$variants"
declare -a row_lines=()
for variant in "${variant_list[@]}"; do
    row_lines+=("$lines")
done
if ((big > 0)); then
    variant_list+=(lab)
    row_lines+=("$big")
fi
declare -a files=()
for i in "${!variant_list[@]}"; do
    variant="${variant_list[$i]}"
    n="${row_lines[$i]}"
    format="${variant%.gz}"
    extra=()
    name="$format-$n"
    case "$format" in
        lab | lab-v0 | lab-cert) ;;
        istio | istio-json)
            # Istio's formats name mTLS callers by address: a busy mesh has thousands per destination.
            extra=(--callers "$callers")
            name="$format-$n-c$callers"
            ;;
        *) die "--variants: unknown format $format" ;;
    esac
    suffix=".log"
    [[ $variant == *.gz ]] && suffix=".log.gz"
    file="$data/$name$suffix"
    if ((regenerate)) || [[ ! -s $file ]]; then
        echo "generating $file ..." >&2
        tmp="$data/.tmp-$name$suffix"
        "$sample" --lines "$n" --format "$format" --seed 1 "${extra[@]}" --out "$tmp" --truth "$data/$name.truth.json"
        mv -f "$tmp" "$file"
    fi
    files+=("$file")
done

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT

# measure KEY OKCODES CMD...: appends "wall_s rss_kb" for one run to $results/KEY.
measure() {
    local key="$1" ok="$2" start end rc=0 rss="nan"
    shift 2
    start=$(date +%s%N)
    if [[ -n $time_bin ]]; then
        "$time_bin" -f '%M' -o "$results/rss" "$@" >/dev/null || rc=$?
    else
        "$@" >/dev/null || rc=$?
    fi
    end=$(date +%s%N)
    [[ ",$ok," == *",$rc,"* ]] || die "exit status $rc from: $*"
    [[ -n $time_bin ]] && rss="$(tail -n 1 "$results/rss")"
    echo "$(((end - start) / 1000000)) $rss" >>"$results/$key"
}

# Pipelines run under bash -c; single commands run directly (no shell start-up in their time).
peer_gz() { zcat "$1" | "$awk_bin" -f "$root/benches/peer.awk"; }
wc_gz() { zcat "$1" | wc -l; }
export -f peer_gz wc_gz
export awk_bin root

for file in "${files[@]}"; do
    cat "$file" >/dev/null # warm the page cache once
done
for ((round = 1; round <= rounds; round++)); do
    echo "round $round/$rounds" >&2
    for i in "${!files[@]}"; do
        file="${files[$i]}"
        kind=plain
        [[ $file == *.gz ]] && kind=gz
        measure "$i.strictly" 0,1 "$strictly" report -o json "$file"
        case "${variant_list[$i]}" in
            lab | lab.gz | lab-v0 | lab-v0.gz) if [[ $kind == gz ]]; then
                measure "$i.awk" 0 bash -c 'peer_gz "$1"' _ "$file"
            else
                measure "$i.awk" 0 "$awk_bin" -f "$root/benches/peer.awk" "$file"
            fi ;;
        esac
        if [[ $kind == gz ]]; then
            measure "$i.wc" 0 bash -c 'wc_gz "$1"' _ "$file"
        else
            measure "$i.wc" 0 wc -l "$file"
        fi
    done
done

# median FILE COLUMN: the median of a column of numbers ("-" when absent).
median() {
    [[ -s $1 ]] || { echo "-"; return; }
    awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 }
        END { if (v[1] == "nan") { print "-"; exit }
              if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
seconds() { [[ $1 == - ]] && echo "-" || awk -v ms="$1" 'BEGIN { printf "%.3f", ms / 1000 }'; }
megabytes() { [[ $1 == - ]] && echo "-" || awk -v kb="$1" 'BEGIN { printf "%.0f", kb / 1024 }'; }
ratio() { [[ $1 == - || $2 == - ]] && echo "-" || awk -v a="$1" -v b="$2" 'BEGIN { printf (b > 0 ? "%.2f" : "-"), a / b }'; }

# check VALUE OP LIMIT: "pass" or "FAIL" ("-" when not measured).
check() {
    [[ $1 == - ]] && { echo "-"; return; }
    awk -v v="$1" -v l="$3" -v op="$2" 'BEGIN { ok = (op == ">=") ? v >= l : v <= l; print ok ? "pass" : "FAIL" }'
}

echo
echo "strictly $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '(no commit)'), $(nproc) cores," \
    "$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //' || uname -m)," \
    "$rounds rounds, medians; awk = $awk_bin"
echo
echo "| input | size MB | strictly s | strictly MB | $awk_bin s | $awk_bin MB | wc s | wc MB | $awk_bin/strictly | strictly/wc | target | met |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |"
for i in "${!files[@]}"; do
    file="${files[$i]}"
    size=$(awk -v b="$(stat -c %s "$file")" 'BEGIN { printf "%.0f", b / 1048576 }')
    s_t=$(median "$results/$i.strictly" 1); s_m=$(median "$results/$i.strictly" 2)
    a_t=$(median "$results/$i.awk" 1); a_m=$(median "$results/$i.awk" 2)
    w_t=$(median "$results/$i.wc" 1); w_m=$(median "$results/$i.wc" 2)
    vs_awk=$(ratio "$a_t" "$s_t")
    vs_wc=$(ratio "$s_t" "$w_t")
    rss_ok=$(check "$(megabytes "$s_m")" "<=" 64)
    case "${variant_list[$i]}" in
        *.gz) target="<= zcat, <= 64 MiB"; met="$(check "$vs_wc" "<=" 1) $rss_ok" ;;
        lab | lab-v0 | lab-cert) target=">= 10x awk, <= 3x wc, <= 64 MiB"
            met="$(check "$vs_awk" ">=" 10) $(check "$vs_wc" "<=" 3) $rss_ok" ;;
        istio) target="<= 4x wc, <= 64 MiB"; met="$(check "$vs_wc" "<=" 4) $rss_ok" ;;
        istio-json) target="<= 6x wc, <= 64 MiB"; met="$(check "$vs_wc" "<=" 6) $rss_ok" ;;
        *) target="-"; met="-" ;;
    esac
    echo "| $(basename "$file") | $size | $(seconds "$s_t") | $(megabytes "$s_m") | $(seconds "$a_t") |" \
        "$(megabytes "$a_m") | $(seconds "$w_t") | $(megabytes "$w_m") | $vs_awk | $vs_wc | $target | $met |"
done
