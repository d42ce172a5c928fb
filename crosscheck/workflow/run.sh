#!/usr/bin/env bash
# Cross-check of the shutdown-race schedules R1 and R2 (and H6) on the real C++.
#
# usage: crosscheck/workflow/run.sh WORKFLOW_CHECKOUT
#   WORKFLOW_CHECKOUT  a checkout of sogou/workflow, branch websocket (b45352cb)
# environment:
#   RUNS=50                 runs per schedule
#   SANITIZERS="asan tsan"  which builds to make and run
#   BUILD_DIR=WORKFLOW_CHECKOUT/_wschan_build   where the builds and logs go
#   JOBS=2                  make -j
#
# It applies the patches of this folder to the checkout (once), builds workflow
# with each sanitizer (cmake + make, incremental), builds driver.cc, runs every
# schedule RUNS times on 127.0.0.1, and prints per schedule what the sanitizer
# said. Exit 1 when a schedule the model calls unsafe was forced and survived
# (or was never forced), or one it calls safe showed a use after free; 2 on a
# usage or build error; 0 otherwise. It downloads nothing.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 1 ] || { sed -n '4,10p' "$0" >&2; exit 2; }
wf=$(cd "$1" && pwd)
runs=${RUNS:-50}
sanitizers=${SANITIZERS:-asan tsan}
build_dir=${BUILD_DIR:-$wf/_wschan_build}
jobs=${JOBS:-2}
studied=b45352cb5a20ce6d378c70920a511329fbf25b68

[ -f "$wf/src/factory/WFChannel.inl" ] || { echo "not a workflow checkout: $wf" >&2; exit 2; }
if head=$(git -C "$wf" rev-parse HEAD 2>/dev/null); then
    [ "$head" = "$studied" ] || echo "note: checkout is at $head, the schedules were studied at $studied"
fi

# 1. Patches, in name order; each applied once (a patch already in place is skipped).
for p in "$here"/*.patch; do
    if (cd "$wf" && git apply --reverse --check "$p" 2>/dev/null); then
        echo "patch $(basename "$p"): already applied"
    else
        (cd "$wf" && git apply "$p") || { echo "patch $(basename "$p") does not apply" >&2; exit 2; }
        echo "patch $(basename "$p"): applied"
    fi
done

# 2. Builds.
flags_asan="-fsanitize=address -fno-omit-frame-pointer -g"
flags_tsan="-fsanitize=thread -g"
build() {  # build SANITIZER -> $build_dir/SANITIZER/driver
    local san=$1 dir=$build_dir/$1 flags
    flags=flags_$san; flags=${!flags}
    mkdir -p "$dir"
    if [ ! -f "$dir/Makefile" ]; then
        cmake -S "$wf" -B "$dir" -DCMAKE_BUILD_TYPE=Debug \
            -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" \
            -DINC_DIR="$dir/_include" -DLIB_DIR="$dir/_lib" > "$dir/cmake.log" 2>&1 \
            || { tail -20 "$dir/cmake.log" >&2; exit 2; }
    fi
    echo "building workflow with $san (log: $dir/make.log)"
    make -C "$dir" -j"$jobs" workflow-static > "$dir/make.log" 2>&1 \
        || { tail -30 "$dir/make.log" >&2; exit 2; }
    if [ ! -x "$dir/driver" ] || [ "$here/driver.cc" -nt "$dir/driver" ] \
        || [ "$dir/_lib/libworkflow.a" -nt "$dir/driver" ]; then
        g++ -std=c++14 $flags -Wall -I"$dir/_include" -o "$dir/driver" "$here/driver.cc" \
            "$dir/_lib/libworkflow.a" -lssl -lcrypto -lpthread
    fi
}

# 3. Schedules: name, poller threads, what the model predicts (README.md).
#   R2-as-is is R2 without the driver's move of deinit's waiter timer off the
#   connection's poller thread: it shows the condition R2 needs. wake-deinit has
#   no pause at all: how often the race happens by itself. Neither is judged.
schedules="R1:4:unsafe R2:4:unsafe R2-late:4:unsafe H6:4:unsafe C-deinit:4:safe C-peer:4:safe"
schedules="$schedules R2-as-is:4:info wake-deinit:4:info"

# AddressSanitizer stops the run at its first report; ThreadSanitizer goes on,
# so its log keeps every report. A run counts as "uaf" when a report is a
# heap-use-after-free, else "not forced" when a pause ran out (the driver says
# why), else "survived" when the driver reached its end.
export ASAN_OPTIONS=detect_leaks=0:exitcode=66
export TSAN_OPTIONS=halt_on_error=0:exitcode=66

status=0
for san in $sanitizers; do
    build "$san"
    dir=$build_dir/$san
    echo
    echo "== $san: $runs runs per schedule"
    printf '%-11s %-8s %-7s %-7s %-9s %-11s %-6s %s\n' \
        schedule pollers model uaf survived not-forced other "first use after free"
    for entry in $schedules; do
        IFS=: read -r name pollers model <<< "$entry"
        logs=$dir/logs/$name-p$pollers
        rm -rf "$logs"; mkdir -p "$logs"
        uaf=0 survived=0 unforced=0 other=0 first=
        for i in $(seq "$runs"); do
            log=$logs/$i.log
            POLLER_THREADS=$pollers timeout 60 "$dir/driver" "$name" > "$log" 2>&1 || true
            if grep -q 'Sanitizer: heap-use-after-free' "$log"; then
                uaf=$((uaf + 1)); first=${first:-$log}; outcome=uaf
            elif grep -q '^not forced' "$log"; then
                unforced=$((unforced + 1)); outcome=not-forced
            elif grep -q 'forced, survived' "$log"; then
                survived=$((survived + 1)); outcome=survived
            else
                other=$((other + 1)); outcome=other
            fi
            # which poller thread owned the connection, per outcome (R2 needs
            # the woken waiter's timer on another one: README.md)
            echo "$outcome: $(grep -m1 -o 'poller [0-9]* of [0-9]*' "$log")" >> "$logs/pollers"
        done
        where=-
        if [ -n "$first" ]; then
            where=$(grep -m1 -A40 'Sanitizer: heap-use-after-free' "$first" \
                | grep -m1 -oE '/src/(client|factory|kernel|manager)/[A-Za-z_.]+:[0-9]+' || true)
            where="${where:-?} ($first)"
        fi
        printf '%-11s %-8s %-7s %-7s %-9s %-11s %-6s %s\n' "$name" "$pollers" "$model" \
            "$uaf/$runs" "$survived/$runs" "$unforced/$runs" "$other" "$where"
        if [ "$unforced" -gt 0 ]; then
            echo "   connection's poller per outcome:" $(sort "$logs/pollers" | uniq -c | tr -s ' ' | paste -sd ';')
        fi
        # What the model predicts. unsafe: a use after free in every run that
        # was forced, and at least one forced run. safe: no use after free.
        # info rows are not judged.
        case $model in
            unsafe) [ "$uaf" -gt 0 ] && [ "$survived" -eq 0 ] && [ "$other" -eq 0 ] \
                || { status=1; echo "   MISMATCH: the model says $name is unsafe"; } ;;
            safe) [ "$uaf" -eq 0 ] && [ "$other" -eq 0 ] \
                || { status=1; echo "   MISMATCH: the model says $name is safe"; } ;;
        esac
    done
done
echo
echo "logs: $build_dir/<sanitizer>/logs/<schedule>-p<pollers>/<run>.log"
if [ $status -eq 0 ]; then
    echo "every schedule behaved as the model predicts"
else
    echo "some schedule did not behave as the model predicts"
fi
exit $status
