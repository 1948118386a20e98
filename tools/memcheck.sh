#!/usr/bin/env bash
# Memory-safety check of the compiled kernels (issue item "Memory safety").
#
#   tools/memcheck.sh [asan] [valgrind] [rss]      (no argument: all three)
#
# Nothing here touches the in-place .so files of the working tree: the current sources
# (tracked and untracked-but-not-ignored files, uncommitted edits included) are copied
# to $DLK_MEMCHECK_DIR (default /tmp/dlkernels-memcheck) and built there, twice:
#
# 1. asan      Built with DLKERNELS_SANITIZE=address (-O3, the production code path:
#              bounds checks off).  The whole test suite (tests/) runs with libasan
#              LD_PRELOADed (CPython itself is not instrumented; the preload makes
#              ASan's malloc the process's malloc, so NumPy's buffers get redzones and
#              any out-of-bounds read/write by a kernel aborts with a report).
#              ASAN_OPTIONS=detect_leaks=0: LeakSanitizer would report CPython's own
#              never-freed interpreter state at exit; leaks are checked by (2) and (3).
#              Reports go to $DLK_MEMCHECK_DIR/asan-report.<pid> (see below).
# 2. valgrind  Plain build, DLKERNELS_GEMM_IMPL=base DLKERNELS_EW_IMPL=base
#              DLKERNELS_LOSS_IMPL=base DLKERNELS_NORM_IMPL=base
#              DLKERNELS_CONV_IMPL=base (this
#              valgrind cannot decode AVX-512; the AVX2/AVX-512 variants are exercised
#              by (1)), PYTHONMALLOC=malloc.
#              A driver calls every kernel of the cython backend (both dtypes,
#              serial and threaded sizes, in-place and strided outputs) N1 and then
#              N2 times under `valgrind --leak-check=full`: any invalid read/write or
#              use of uninitialised memory fails (CPython's own noise suppressed, see
#              below), a definitely-lost block allocated by a kernels module fails,
#              and the "definitely lost" total must not grow with calls.
# 3. rss       Plain build, native speed: every kernel called W times (warm-up), RSS
#              read, then R more times; RSS must not grow by more than a small slack.
#
# Exit status: 0 when every requested check is clean, non-zero otherwise (first
# failure stops the script).  Takes about 5-10 minutes on a 2-core machine; not in CI.
#
# Knobs (environment): DLK_MEMCHECK_DIR (work folder), PYTHON (interpreter),
# DLK_MEMCHECK_PYTEST_ARGS (what ASan runs; default "tests"),
# DLK_MEMCHECK_ALLOW_TEST_FAILURES=1 (ASan step: ordinary test failures only warn;
# an ASan report or a crash still fails), DLK_MEMCHECK_N1/N2 (valgrind rounds),
# DLK_MEMCHECK_RSS_WARM/MORE/SLACK_KB (rss step).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${DLK_MEMCHECK_DIR:-/tmp/dlkernels-memcheck}
PY=${PYTHON:-python3}
# the interpreter itself, not a wrapper (pyenv shims are shell scripts that valgrind
# would trace instead of Python)
PY=$("$PY" -c 'import sys; print(sys.executable)')
[ -x "$PY" ] || { echo "memcheck: no Python interpreter found" >&2; exit 2; }
N1=${DLK_MEMCHECK_N1:-2}
N2=${DLK_MEMCHECK_N2:-12}
ASAN_PYTEST_ARGS=${DLK_MEMCHECK_PYTEST_ARGS:-tests}

checks=("$@")
[ ${#checks[@]} -eq 0 ] && checks=(asan valgrind rss)
for c in "${checks[@]}"; do
    case "$c" in asan|valgrind|rss) ;; *) echo "memcheck: unknown check '$c' (asan, valgrind, rss)" >&2; exit 2;; esac
done
want() { local c; for c in "${checks[@]}"; do [ "$c" = "$1" ] && return 0; done; return 1; }

log() { printf '\n== memcheck: %s\n' "$*"; }
die() { printf 'memcheck: FAILED: %s\n' "$*" >&2; exit 1; }

# Copy the working tree's sources (not its build outputs) into $1.
copy_tree() {
    local dest=$1
    rm -rf "$dest"
    mkdir -p "$dest"
    # (in Python: any file name works, and a file that others delete meanwhile is
    # skipped)
    "$PY" - "$ROOT" "$dest" <<'PYEOF' || die "copy of the tree to $dest failed"
import os, shutil, subprocess, sys
root, dest = (os.fsencode(a) for a in sys.argv[1:])
listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                         cwd=root, capture_output=True, check=True).stdout
for name in filter(None, listing.split(b"\0")):
    src, dst = os.path.join(root, name), os.path.join(dest, name)
    if os.path.islink(src) or not os.path.isfile(src):
        continue
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    try:
        shutil.copy2(src, dst)
    except FileNotFoundError:
        pass
PYEOF
    [ -f "$dest/setup.py" ] || die "copy of the tree to $dest failed"
    # make sure no in-place extension was carried over
    if [ -n "$(find "$dest/src" -name '*.so')" ]; then die "stale .so copied into $dest"; fi
}

# Build the extensions in place inside the copy $1; extra env passed by the caller.
build_copy() {
    local dest=$1
    (cd "$dest" && "$PY" setup.py -q build_ext --inplace --build-temp "$dest/build/tmp" \
        > "$dest/build.log" 2>&1) || { tail -40 "$dest/build.log"; die "build in $dest failed"; }
    local n
    n=$(find "$dest/src/kernels" -name '*.so' | wc -l)
    [ "$n" -ge 7 ] || die "build in $dest produced only $n extension modules"
}

# The driver of checks 2 and 3 (tools/memcheck_driver.py): every kernel of the cython
# backend, both dtypes, small (serial) and large (OpenMP) sizes, in-place and
# allocating forms.
DRIVER=$ROOT/tools/memcheck_driver.py

# Some optional-argument kernels may differ in keyword names; run the driver once
# natively first so that a driver mistake is not mistaken for a memory error.
smoke_driver() {
    local dest=$1
    (cd "$dest" && PYTHONPATH="$dest/src" "$PY" "$DRIVER" count 1 >/dev/null) \
        || die "the kernel driver itself fails (natively) in $dest"
}

# ------------------------------------------------------------------------ 1. ASan
if want asan; then
    command -v gcc >/dev/null || die "asan: gcc not found"
    LIBASAN=$(gcc -print-file-name=libasan.so)
    [ -f "$LIBASAN" ] || die "asan: libasan.so not found (gcc -print-file-name=libasan.so)"
    log "asan: copying the tree to $WORK/asan and building with DLKERNELS_SANITIZE=address"
    copy_tree "$WORK/asan"
    (export DLKERNELS_SANITIZE=address; build_copy "$WORK/asan")
    for so in "$WORK"/asan/src/kernels/cpu/*.so; do
        case "$(ldd "$so")" in   # (not `ldd | grep -q`: SIGPIPE + pipefail)
            *libasan*) ;;
            *) die "asan: $so is not linked against libasan";;
        esac
    done
    log "asan: self-test: a deliberate heap overflow on a NumPy buffer must be caught"
    set +e
    (cd "$WORK/asan" && LD_PRELOAD="$LIBASAN" ASAN_OPTIONS=detect_leaks=0:exitcode=86 \
        PYTHONPATH="$WORK/asan/src" "$PY" -c "
import ctypes, numpy as np, kernels.cpu.dense
a = np.zeros(10, np.float32)
ctypes.memset(a.ctypes.data, 0, a.nbytes + 1)   # one byte past the end
print('overflow NOT detected')" > "$WORK/asan-selftest.log" 2>&1)
    rc=$?
    set -e
    if [ $rc -ne 86 ] || ! grep -q "heap-buffer-overflow" "$WORK/asan-selftest.log"; then
        cat "$WORK/asan-selftest.log"
        die "asan: the sanitizer is not live (self-test exit $rc)"
    fi
    echo "asan: self-test ok (heap-buffer-overflow reported)"
    log "asan: running pytest $ASAN_PYTEST_ARGS under ASan (LD_PRELOAD=$LIBASAN)"
    # log_path: pytest captures fd 2 during a test, so a report on stderr would die
    # with the process; it goes to asan-report.<pid> files instead (subprocesses of
    # the tests included).  allocator_may_return_null=1: malloc of an impossible size
    # returns NULL (NumPy's MemoryError, as without ASan) instead of aborting.
    rm -f "$WORK"/asan-report.*
    set +e
    (cd "$WORK/asan" && \
        LD_PRELOAD="$LIBASAN" \
        ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:allocator_may_return_null=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_string_checks=1:log_path=$WORK/asan-report" \
        PYTHONPATH="$WORK/asan/src" \
        exec "$PY" -m pytest $ASAN_PYTEST_ARGS -v -p no:cacheprovider \
            > "$WORK/asan.log" 2>&1) &
    main_pid=$!          # exec: the pytest process itself
    wait $main_pid
    rc=$?
    set -e
    tail -3 "$WORK/asan.log"
    # Error reports: the pytest process's own, and any subprocess's (training workers,
    # fuzzers...) except a SEGV raised through ctypes: test_bad_inputs.py crashes a
    # child on purpose (ctypes.string_at(0)) to show that crashes are seen.  The files
    # may also hold mere warnings, e.g. "failed to allocate 0x4000000000000 bytes" from
    # a test asking for a petabyte: only ERROR reports count.
    reports=""
    for r in $(grep -l "ERROR: AddressSanitizer" "$WORK"/asan-report.* 2>/dev/null | sort || true); do
        if [ "$r" != "$WORK/asan-report.$main_pid" ] \
                && grep -q "ERROR: AddressSanitizer: SEGV" "$r" && grep -q "_ctypes" "$r"; then
            echo "asan: ignoring $r: a deliberate crash through ctypes in a test's subprocess"
            continue
        fi
        reports="$reports $r"
    done
    if [ -n "$reports" ] || [ $rc -eq 86 ] || grep -q "ERROR: AddressSanitizer" "$WORK/asan.log"; then
        for r in $reports; do head -60 "$r"; done
        echo "last test started: $(grep -E '::' "$WORK/asan.log" | tail -1)"
        die "asan: AddressSanitizer reported an error (exit $rc; reports:${reports:- none}; log: $WORK/asan.log)"
    fi
    if [ $rc -ne 0 ]; then
        grep -E "^(FAILED|ERROR) " "$WORK/asan.log" | head -100 || true
        if [ "${DLK_MEMCHECK_ALLOW_TEST_FAILURES:-0}" = 1 ] && [ $rc -eq 1 ]; then
            echo "asan: WARNING: tests failed (listed above) but ASan reported no memory" \
                 "error; DLK_MEMCHECK_ALLOW_TEST_FAILURES=1 lets that pass"
        else
            die "asan: pytest exited with $rc and no ASan report: failing tests, not memory errors (log: $WORK/asan.log; DLK_MEMCHECK_ALLOW_TEST_FAILURES=1 tolerates them)"
        fi
    fi
    grep -E "^=+ .*(passed|failed).* =+$" "$WORK/asan.log" | tail -1 || true
    # the sanitized modules really were the ones imported
    (cd "$WORK/asan" && LD_PRELOAD="$LIBASAN" ASAN_OPTIONS=detect_leaks=0 \
        PYTHONPATH="$WORK/asan/src" "$PY" -c \
        "import kernels.cpu.dense as d, sys; sys.exit(0 if d.__file__.startswith('$WORK/asan/') else 1)") \
        || die "asan: the tests did not import the sanitized build"
    log "asan: clean"
fi

# --------------------------------------------------------------- plain build (2, 3)
if want valgrind || want rss; then
    log "plain: copying the tree to $WORK/plain and building (no sanitizer)"
    copy_tree "$WORK/plain"
    (unset DLKERNELS_SANITIZE DLKERNELS_DEBUG; build_copy "$WORK/plain")
    smoke_driver "$WORK/plain"
fi

# ---------------------------------------------------------------------- 2. valgrind
# CPython 3.11 as built here (pyenv) is not valgrind-clean on its own: `python -c pass`
# reports ~600 "uninitialised value" errors inside libpython (int.from_bytes reads a
# digit it never wrote) and ld.so's is_dst() over-reads; NumPy and CPython also leave a
# few hundred bytes "definitely lost" at import, and so does glibc's dlopen: each time
# its scope array grows (resize_scopes) the old one is dropped, so the dispatchers'
# imports of their variant modules (`elementwise._init`...) show up with 64 bytes.
# So: those kinds of noise are suppressed by location (top frame in libpython / ld.so's
# is_dst / the loader's resize_scopes, nothing else), the exit status counts every
# other error (--error-exitcode), leaks are judged apart: no other definitely-lost
# block may be allocated from a kernels module, and the definitely-lost total must
# not grow between N1 and N2 rounds of calls.
if want valgrind; then
    command -v valgrind >/dev/null || die "valgrind: not installed"
    SUPP=$ROOT/tools/memcheck.supp
    definite_lost() {   # bytes definitely lost in valgrind log $1
        local v
        v=$(grep -E "definitely lost: [0-9,]+ bytes" "$1" | tail -1 \
            | sed -E 's/.*definitely lost: ([0-9,]+) bytes.*/\1/' | tr -d , || true)
        echo "${v:-0}"
    }
    vg() {   # vg LOG ARGS...: the driver under memcheck
        local logf=$1; shift
        (cd "$WORK/plain" && \
            DLKERNELS_GEMM_IMPL=base DLKERNELS_EW_IMPL=base DLKERNELS_LOSS_IMPL=base \
            DLKERNELS_NORM_IMPL=base DLKERNELS_CONV_IMPL=base PYTHONMALLOC=malloc \
            PYTHONPATH="$WORK/plain/src" \
            valgrind --tool=memcheck --suppressions="$SUPP" \
                --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=none \
                --error-exitcode=97 --track-origins=no --num-callers=30 \
                --log-file="$logf" "$PY" "$DRIVER" "$@")
    }
    log "valgrind: self-test: a deliberate heap overflow on a NumPy buffer must be caught"
    set +e
    vg "$WORK/valgrind-canary.log" canary >/dev/null
    rc=$?
    set -e
    if [ $rc -ne 97 ] || ! grep -q "Invalid write" "$WORK/valgrind-canary.log"; then
        die "valgrind: the self-test overflow was not reported (exit $rc; log: $WORK/valgrind-canary.log)"
    fi
    echo "valgrind: self-test ok (Invalid write reported)"
    for n in "$N1" "$N2"; do
        log "valgrind: every kernel x $n (GEMM, elementwise, loss, normalisation and convolution variants base, PYTHONMALLOC=malloc)"
        set +e
        out=$(vg "$WORK/valgrind-$n.log" count "$n")
        rc=$?
        set -e
        echo "$out"
        grep -q "Command: $PY " "$WORK/valgrind-$n.log" \
            || die "valgrind: did not run the Python interpreter itself (log: $WORK/valgrind-$n.log)"
        grep -E "ERROR SUMMARY|definitely lost:" "$WORK/valgrind-$n.log" | sed 's/^==[0-9]*== /  /'
        if [ $rc -ne 0 ]; then
            grep -B2 -A25 -E "Invalid (read|write|free)|uninitialised|Mismatched|overlap" \
                "$WORK/valgrind-$n.log" | head -80 || true
            die "valgrind: memory errors (exit $rc) with $n rounds (log: $WORK/valgrind-$n.log)"
        fi
        grep -q "gemm_impl=base" <<<"$out" \
            || die "valgrind: DLKERNELS_GEMM_IMPL=base was not honoured"
        grep -q "ew_impl=base" <<<"$out" \
            || die "valgrind: DLKERNELS_EW_IMPL=base was not honoured"
        grep -q "loss_impl=base" <<<"$out" \
            || die "valgrind: DLKERNELS_LOSS_IMPL=base was not honoured"
        grep -q "norm_impl=base" <<<"$out" \
            || die "valgrind: DLKERNELS_NORM_IMPL=base was not honoured"
        grep -q "conv_impl=base" <<<"$out" \
            || die "valgrind: DLKERNELS_CONV_IMPL=base was not honoured"
        grep -qE "ERROR SUMMARY: 0 errors" "$WORK/valgrind-$n.log" \
            || die "valgrind: errors reported with $n rounds (log: $WORK/valgrind-$n.log)"
        # a definitely-lost block allocated (anywhere in its stack) by a kernels module
        # (src/kernels/cpu/*.so: dense, gemm*, elementwise*, losses*, normalization*,
        # embedding, optimizers...)
        if awk '/definitely lost in loss record/{rec=1; next} rec && /^==[0-9]+== *$/{rec=0}
                rec && /src\/kernels\/(cpu\/)?[a-z0-9_]+\.cpython/{bad=1} END{exit bad ? 0 : 1}' \
                "$WORK/valgrind-$n.log"; then
            die "valgrind: a block allocated by a kernels module is definitely lost (log: $WORK/valgrind-$n.log)"
        fi
    done
    l1=$(definite_lost "$WORK/valgrind-$N1.log")
    l2=$(definite_lost "$WORK/valgrind-$N2.log")
    echo "valgrind: definitely lost after $N1 rounds: $l1 bytes; after $N2 rounds: $l2 bytes" \
         "(import-time CPython/NumPy blocks)"
    [ "$l2" -le "$l1" ] || die "valgrind: definitely-lost bytes grow with calls ($l1 -> $l2)"
    log "valgrind: clean"
fi

# --------------------------------------------------------------------------- 3. rss
if want rss; then
    WARM=${DLK_MEMCHECK_RSS_WARM:-50}
    MORE=${DLK_MEMCHECK_RSS_MORE:-500}
    SLACK_KB=${DLK_MEMCHECK_RSS_SLACK_KB:-1024}
    log "rss: every kernel x $WARM (warm-up), then x $MORE more"
    out=$(cd "$WORK/plain" && PYTHONPATH="$WORK/plain/src" "$PY" "$DRIVER" rss "$WARM" "$MORE") \
        || die "rss: the driver failed"
    grep -v RSS_GROWTH_KB <<<"$out" || true
    growth=$(sed -n 's/^RSS_GROWTH_KB=//p' <<<"$out")
    [ -n "$growth" ] || die "rss: no measurement"
    [ "$growth" -le "$SLACK_KB" ] || die "rss: RSS grew by $growth kB over $MORE rounds (slack $SLACK_KB kB)"
    log "rss: clean (growth $growth kB <= $SLACK_KB kB)"
fi

log "all requested checks clean: ${checks[*]}"
