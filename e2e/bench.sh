#!/usr/bin/env bash
# Every benchmark, one after the other, summed up in one table at the end (`make bench`):
#   kafka      cargo bench -p kstreams-kafka --bench kafka_refresh (kafka/benches/kafka_refresh.rs)
#   reconcile  e2e/bench-reconcile.sh N for each N in BENCH_RECONCILE_SIZES ("200 1000")
#   memory     e2e/bench-memory.sh (BENCH_APPS 1000 apps, BENCH_QUIET_SECONDS 300 quiet)
# BENCH_ONLY="kafka reconcile memory" runs a subset. Each script appends its figures to the file
# BENCH_ROWS names (tab-separated: section, measure, value, target); its full output is kept
# in a log dir /tmp/kso-bench.XXXXXX, printed at the end. A step that fails adds a row saying so
# and the run goes on; the script exits non-zero at the end then. The table is markdown, to
# paste into the README. Needs the stack (under e2e/with-stack.sh, as `make bench` runs it).
# Usage: e2e/bench.sh
set -uo pipefail
. "$(dirname "$0")/lib.sh"
BENCH_ONLY=${BENCH_ONLY:-kafka reconcile memory}
BENCH_RECONCILE_SIZES=${BENCH_RECONCILE_SIZES:-200 1000}
eval "$("$E2E_DIR/cluster.sh" env)"
eval "$("$E2E_DIR/kafka.sh" env)"
LOG_DIR=$(mktemp -d /tmp/kso-bench.XXXXXX)
export BENCH_ROWS=$LOG_DIR/rows.tsv BENCH_LOG_DIR=$LOG_DIR
: >"$BENCH_ROWS"
START=$SECONDS
FAILED=0

for part in $BENCH_ONLY; do
  case $part in kafka | reconcile | memory) ;; *) die "BENCH_ONLY: unknown part '$part' (kafka reconcile memory)" ;; esac
done

# step NAME SECTION CMD...: runs CMD in the repo root, its output shown and kept in
# $LOG_DIR/NAME.log; when it fails, a row of SECTION says so (with its last error line).
step() {
  local name=$1 section=$2 rc t=$SECONDS why
  shift 2
  log "bench: $name (log: $LOG_DIR/$name.log)"
  (cd "$REPO_DIR" && "$@") 2>&1 | tee "$LOG_DIR/$name.log"
  rc=${PIPESTATUS[0]}
  if ((rc != 0)); then
    FAILED=1
    why=$(grep -E '^(error|thread .* panicked)' "$LOG_DIR/$name.log" | tail -1 | cut -c1-160)
    printf '%s\tFAILED (exit %s after %ss)\t%s\t\n' "$section" "$rc" $((SECONDS - t)) \
      "${why:-see the log} (log: $LOG_DIR/$name.log)" >>"$BENCH_ROWS"
    log "bench: $name failed (exit $rc); going on"
  fi
  printf '%s\tduration\t%s s\t\n' "$section" $((SECONDS - t)) >>"$BENCH_ROWS"
}

kafka_bench() {
  eval "$(e2e/kafka.sh env)"
  cargo bench -p kstreams-kafka --bench kafka_refresh
}

for part in $BENCH_ONLY; do
  case $part in
    kafka) step kafka kafka kafka_bench ;;
    reconcile)
      for n in $BENCH_RECONCILE_SIZES; do
        step "reconcile-$n" "reconcile N=$n" e2e/bench-reconcile.sh "$n"
      done
      ;;
    memory) step memory "memory N=${BENCH_APPS:-1000}" e2e/bench-memory.sh ;;
  esac
done

# The table: one header line, then the rows as a markdown table with aligned columns.
rev=$(git -C "$REPO_DIR" rev-parse --short HEAD 2>/dev/null || echo unknown)
[[ -z $(git -C "$REPO_DIR" status --porcelain 2>/dev/null) ]] || rev+="+dirty"
printf '\nmake bench: %s cores, %s, %s (%d s)\n\n' "$(nproc)" "$rev" "$(date '+%Y-%m-%d %H:%M %Z')" $((SECONDS - START))
awk -F '\t' '
  { for (i = 1; i <= 4; i++) { c = $i; gsub(/\|/, "\\|", c); cell[NR, i] = c; if (length(c) > w[i]) w[i] = length(c) } }
  END {
    split("section measure value target", head, " ")
    for (i = 1; i <= 4; i++) if (length(head[i]) > w[i]) w[i] = length(head[i])
    line(head, 0); sep = "|"
    for (i = 1; i <= 4; i++) { d = ""; for (j = 0; j < w[i] + 2; j++) d = d "-"; sep = sep d "|" }
    print sep
    for (r = 1; r <= NR; r++) { for (i = 1; i <= 4; i++) row[i] = cell[r, i]; line(row, 1) }
  }
  function line(a, x,   i, s) { s = "|"; for (i = 1; i <= 4; i++) s = s sprintf(" %-" w[i] "s |", a[i]); print s }
' "$BENCH_ROWS"
printf '\nlogs: %s\n' "$LOG_DIR"
((FAILED == 0)) || die "bench: some steps failed (see the FAILED rows; logs in $LOG_DIR)"
