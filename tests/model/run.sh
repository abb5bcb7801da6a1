#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# Model-checks allocator.pml (the sample allocator's concurrency protocol) with SPIN.
# See README.md in this folder.
#
#   tests/model/run.sh            the protocol as the code has it (with both fixes the model led to)
#   tests/model/run.sh --before   the protocol before those fixes: shows the two findings (fails)
#   tests/model/run.sh --quick    only the small configurations (either mode)
#   tests/model/run.sh -j 2       run two checks at a time (default 1)
#   tests/model/run.sh -DNAME=V   extra defines for every check (e.g. -DROUNDS=3)
#
# Each check: spin -a, gcc -O2 with -DSAFETY (assertions, invalid end states) or -DNP (non-progress
# cycles under weak fairness), pan; one summary line per check with the states explored. Exits 1
# if pan reports any error (or an incomplete search), 2 on a usage or tool problem, 0 otherwise.
# On an error the shortest trail found is replayed, one line per step, from the work directory
# ($MODEL_WORK, default a fresh /tmp/sluice-model.XXXXXX) where the .trail files stay.
# Needs spin (Debian: apt-get install -y spin) and gcc; no cmake, no build of the project.

set -u

here=$(cd "$(dirname "$0")" && pwd)
before=0
quick=0
jobs=1
extra=()
while [ $# -gt 0 ]; do
    a=$1
    shift
    case $a in
        --before) before=1 ;;
        -q | --quick) quick=1 ;;
        -j) jobs=${1:-}; shift ;;
        -j*) jobs=${a#-j} ;;
        -D*) extra+=("$a") ;;
        -h | --help) sed -n '4,/^$/p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "run.sh: unknown argument '$a' (see --help)" >&2; exit 2 ;;
    esac
done
case $jobs in '' | *[!0-9]* | 0) echo "run.sh: -j wants a positive number" >&2; exit 2 ;; esac
command -v spin >/dev/null 2>&1 || { echo "run.sh: spin not found (Debian: apt-get install -y spin)" >&2; exit 2; }
command -v gcc >/dev/null 2>&1 || { echo "run.sh: gcc not found" >&2; exit 2; }

work=${MODEL_WORK:-$(mktemp -d /tmp/sluice-model.XXXXXX)}
mkdir -p "$work"
echo "SPIN: $(spin -V)   work directory: $work"
failed=0

# One step per line: "P<pid> <proctype> <line>: <source text>", repeated steps of one statement
# folded. Reads `spin -t -p` on stdin; $1 is the model.
condense() {
    awk -v src="$1" '
        BEGIN { n = 0; while ((getline l < src) > 0) text[++n] = l }
        /proc +[0-9]+ \(/ && /\(state [0-9]+\)/ {
            if (!match($0, /proc +[0-9]+ \([A-Za-z_:0-9]+\)/)) next
            head = substr($0, RSTART, RLENGTH)
            split(head, hp, /[ (:]+/); pid = hp[2]; name = hp[3]
            if (!match($0, /\.pml:[0-9]+/)) next
            ln = substr($0, RSTART + 5, RLENGTH - 5) + 0
            key = pid ":" ln
            if (key == last) next
            last = key
            t = text[ln]; gsub(/^[ \t]+/, "", t)
            if (t ~ /^(fi|od|fi;|od;|skip;?|if|do|\};?|:: else -> skip|:: else -> break)$/) next
            printf "  P%s %-8s %4d: %s\n", pid, name, ln, substr(t, 1, 130)
        }
        /assertion violated|text of failed|START OF CYCLE|invalid end state/ { print "  >> " $0 }'
}

# run_check NAME MODE [-Ddefine...]   MODE: safety | liveness
# Writes its report to $work/NAME/report and, when something failed, creates $work/NAME/failed.
run_check() {
    local name=$1 mode=$2
    shift 2
    local dir="$work/$name"
    mkdir -p "$dir" && cp "$here/allocator.pml" "$dir/" || { echo "$name: cannot set up $dir"; touch "$dir/failed"; return; }
    (
        cd "$dir" || exit 2
        if ! spin "$@" "${extra[@]}" -a allocator.pml >spin.log 2>&1; then
            echo "spin -a failed:"; cat spin.log; exit 2
        fi
        case $mode in
            safety) gcc -O2 -w -DSAFETY -DCOLLAPSE -o pan pan.c && ./pan -m4000000 -w26 >pan.out 2>&1 ;;
            liveness) gcc -O2 -w -DNP -DCOLLAPSE -o pan pan.c && ./pan -l -f -m4000000 -w26 >pan.out 2>&1 ;;
        esac
        [ -s pan.out ] || { echo "pan did not run"; exit 2; }
        exit 0
    ) >"$dir/run.log" 2>&1
    if [ $? -ne 0 ]; then
        printf '%-34s %s\n' "$name" "TOOL FAILURE"; sed 's/^/  /' "$dir/run.log"; touch "$dir/failed"; return
    fi
    local out="$dir/pan.out"
    local errors states trans depth secs
    errors=$(sed -n 's/.*errors: *\([0-9]*\).*/\1/p' "$out" | tail -1)
    states=$(awk '/states, stored/ {print $1; exit}' "$out")
    trans=$(awk '/transitions \(= / {print $1; exit}' "$out")
    depth=$(sed -n 's/.*depth reached *\([0-9]*\).*/\1/p' "$out" | tail -1)
    secs=$(sed -n 's/^pan: elapsed time *\([0-9.e+]*\).*/\1/p' "$out" | tail -1)
    local verdict=ok
    if [ -z "$errors" ]; then verdict="NO RESULT"
    elif [ "$errors" != 0 ]; then verdict="ERROR"
    elif grep -q "max search depth too small\|Search not completed" "$out"; then verdict="INCOMPLETE"
    fi
    [ "$verdict" = ok ] || touch "$dir/failed"
    printf '%-34s %-8s %-9s states %10s  transitions %10s  depth %4s  %6ss   %s\n' \
        "$name" "$mode" "$verdict" "${states:-?}" "${trans:-?}" "${depth:-?}" "${secs:-?}" "$*"
    if [ "$verdict" = ERROR ]; then
        grep -E "^pan:[0-9]+:|^pan: " "$out" | grep -v "elapsed\|rate" | sed 's/^/  /'
        (
            cd "$dir" || exit 0
            if [ "$mode" = safety ]; then  # the shortest trail instead of the first one found
                gcc -O2 -w -DSAFETY -DBFS -o pan-bfs pan.c && ./pan-bfs >pan-bfs.out 2>&1
            fi
            echo "  trail ($dir/allocator.pml.trail):"
            spin "$@" "${extra[@]}" -t -p allocator.pml 2>&1 | condense allocator.pml >trail.txt
            if [ "$(wc -l <trail.txt)" -gt 90 ]; then
                echo "  ... $(($(wc -l <trail.txt) - 90)) earlier steps in $dir/trail.txt"
                tail -90 trail.txt
            else
                cat trail.txt
            fi
        )
    fi
}

names=()
# check NAME MODE [-Ddefine...]: runs one check, in the background when -j > 1.
check() {
    names+=("$1")
    rm -rf "${work:?}/$1"
    mkdir -p "$work/$1"
    if [ "$jobs" -le 1 ]; then
        run_check "$@" >"$work/$1/report" 2>&1
        cat "$work/$1/report"
    else
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n; done
        run_check "$@" >"$work/$1/report" 2>&1 &
    fi
}

if [ $before = 1 ]; then
    echo "== the protocol before the fixes (-DFIX=0 -DNOPOOL_WAIT=0): the findings =="
    extra+=(-DFIX=0 -DNOPOOL_WAIT=0)
    # (c) rule 4 (the destructor), every assertion on; decommit() early or from the destructor only.
    check rule1-3t2s-destructor-only safety -DNT=3 -DNS=2 -DROUNDS=1 -DEARLY=0
    [ $quick = 1 ] || check rule1-2t1s safety -DNT=2 -DNS=1 -DROUNDS=2
    # (a) (a') (b) and the rest of (c): everything but push_free's wake-up after the free step.
    check rest-2t1s safety -DNT=2 -DNS=1 -DROUNDS=2 -DNOTIFY_CHECK=0
    check rest-2t2s safety -DNT=2 -DNS=2 -DROUNDS=2 -DNOTIFY_CHECK=0
    if [ $quick = 0 ]; then
        check rest-3t1s safety -DNT=3 -DNS=1 -DROUNDS=1 -DNOTIFY_CHECK=0
        check rest-3t2s safety -DNT=3 -DNS=2 -DROUNDS=1 -DNOTIFY_CHECK=0
        check rest-3t1s-timed safety -DNT=3 -DNS=1 -DROUNDS=1 -DTIMED=1 -DNOTIFY_CHECK=0
        check rest-2t1s-spins safety -DNT=2 -DNS=1 -DROUNDS=2 -DSPINS=1 -DNOTIFY_CHECK=0
    fi
    # no livelock: non-progress cycles under weak fairness
    check progress-2t1s liveness -DNT=2 -DNS=1 -DROUNDS=2 -DNOTIFY_CHECK=0
else
    echo "== the protocol as the code has it (FIX=1 NOPOOL_WAIT=1) =="
    fx=(-DFIX=1 -DNOPOOL_WAIT=1)
    check fixed-2t1s safety -DNT=2 -DNS=1 -DROUNDS=2 "${fx[@]}"
    check fixed-2t2s safety -DNT=2 -DNS=2 -DROUNDS=2 "${fx[@]}"
    if [ $quick = 0 ]; then
        check fixed-3t1s safety -DNT=3 -DNS=1 -DROUNDS=1 "${fx[@]}"
        check fixed-3t2s safety -DNT=3 -DNS=2 -DROUNDS=1 "${fx[@]}"
        check fixed-3t1s-timed safety -DNT=3 -DNS=1 -DROUNDS=1 -DTIMED=1 "${fx[@]}"
        check fixed-2t1s-spins safety -DNT=2 -DNS=1 -DROUNDS=2 -DSPINS=1 "${fx[@]}"
    fi
    check fixed-progress-2t1s liveness -DNT=2 -DNS=1 -DROUNDS=2 "${fx[@]}"
fi

wait
if [ "$jobs" -gt 1 ]; then
    for n in "${names[@]}"; do cat "$work/$n/report"; done
fi
for n in "${names[@]}"; do [ -e "$work/$n/failed" ] && failed=1; done
if [ $failed != 0 ]; then
    echo "run.sh: pan reported errors (or could not finish); see above and $work"
    exit 1
fi
echo "run.sh: no errors"
