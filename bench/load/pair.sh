#!/usr/bin/env bash
# The benchmark pair, head to head with Postfix's tools on the same work in one run:
#   A  salvo-blast  -> salvo-sink
#   B  salvo-blast  -> Postfix smtp-sink      (same client: compares the sinks)
#   C  Postfix smtp-source -> smtp-sink       (Postfix's own pair, no pipelining)
# Rows: body 1 KiB / 100 KiB x connections 1 / 50 x recipients 1 / 10; MESSAGES messages
# each (default 50,000); the median of RUNS runs (default 3). Prints msgs/s, MB/s and the
# ratios A/C and A/B. Postfix is installed if absent and never left running.
# Usage: bench/load/pair.sh [--quick]   (--quick: 5,000 messages, 1 run)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh
MESSAGES=${MESSAGES:-50000}
RUNS=${RUNS:-3}
if [ "${1:-}" = "--quick" ]; then MESSAGES=5000; RUNS=1; fi
BUILD=${BUILD:-build}
TIMEOUT=${TIMEOUT:-300}

ensure_built salvo-sink salvo-blast
ensure_postfix

work=$(mktemp -d)
cleanup() { stop_all; rm -rf "$work"; }
on_exit cleanup

now() { date +%s.%N; }

# salvo-blast against whatever listens on $port; prints msgs/s
run_blast() {  # port size conns rcpts
  timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$1" --size "$2" --connections "$3" \
    --rcpts "$4" --messages "$MESSAGES" --json > "$work/blast.json"
  python3 -c "import json; j=json.load(open('$work/blast.json')); assert j['accepted']==$MESSAGES, j; print(j['msgs_per_s'])"
}

one_run() {  # mode size conns rcpts -> msgs/s
  local mode=$1 size=$2 conns=$3 rcpts=$4 port rate
  # It runs in $(...), a subshell: the sink it starts must stop with it, however it ends.
  trap stop_sink EXIT
  port=$(free_port)
  case $mode in
    A)
      start_sink "$work" --listen "127.0.0.1:$port" || die_start
      rate=$(run_blast "$port" "$size" "$conns" "$rcpts")
      stop_sink
      python3 -c "import json; j=json.load(open('$work/sink.json')); assert j['messages']==$MESSAGES, j" ;;
    B|C)
      start_smtp_sink "$port" || die_start
      if [ "$mode" = B ]; then
        rate=$(run_blast "$port" "$size" "$conns" "$rcpts")
      else
        # smtp-source -l is the body length; -d keeps each session's connection open.
        local t0 t1
        t0=$(now)
        timeout "$TIMEOUT" smtp-source -d -s "$conns" -m "$MESSAGES" -l "$size" -r "$rcpts" \
          -f blast@sender.example -t rcpt@d0.example.test "127.0.0.1:$port" >/dev/null
        t1=$(now)
        rate=$(python3 -c "print($MESSAGES/($t1-$t0))")
      fi
      stop_sink ;;
  esac
  echo "$rate"
}

median() { python3 -c "import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }

printf "salvo pair benchmark: %d messages per run, median of %d, %s cores, %s\n" \
  "$MESSAGES" "$RUNS" "$(nproc)" "$(date -u +%Y-%m-%dT%H:%MZ)"
printf "%-8s %5s %5s | %12s %12s %12s | %9s %9s | %8s %8s %8s\n" body conns rcpts \
  "A salvo" "B blast>pfx" "C pfx pair" "A/C" "A/B" "A MB/s" "B MB/s" "C MB/s"
for size in 1024 102400; do
  for conns in 1 50; do
    for rcpts in 1 10; do
      declare -A med
      for mode in A B C; do
        vals=()
        for _ in $(seq 1 "$RUNS"); do vals+=("$(one_run $mode $size $conns $rcpts)"); done
        med[$mode]=$(median "${vals[@]}")
      done
      python3 - "$size" "$conns" "$rcpts" "${med[A]}" "${med[B]}" "${med[C]}" <<'PY'
import sys
size, conns, rcpts = int(sys.argv[1]), sys.argv[2], sys.argv[3]
a, b, c = (float(x) for x in sys.argv[4:7])
mb = lambda r: r * size / 1e6
label = "1KiB" if size == 1024 else "100KiB"
print(f"{label:<8} {conns:>5} {rcpts:>5} | {a:12.0f} {b:12.0f} {c:12.0f} | {a/c:8.2f}x {a/b:8.2f}x | {mb(a):8.1f} {mb(b):8.1f} {mb(c):8.1f}")
PY
    done
  done
done
