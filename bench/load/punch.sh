#!/usr/bin/env bash
# Spool disk use with a few deferred recipients (issue 15, segment compaction): does live
# data or history set it?
#   1. salvod ([node] spool_punch_interval = "0s": nothing punched, as before punching
#      existed; or MAIN_SALVOD=path, an older build) takes MESSAGES messages of SIZE over
#      SMTP (salvo-blast, 50 connections) and delivers them through [routes] to one
#      salvo-sink that answers 451 to DEFER of the RCPTs (--defer-rate); the retry schedule
#      is 1 h, so the deferred ones stay. Once nothing is ready or in flight: the spool's
#      allocated size (du) and its apparent size. Then a clean stop.
#   2. This build's salvod over the same spool, spool_punch_interval = "1s": once its
#      background recovery is done and salvo_spool_punched_segments_total has stopped
#      growing for 5 s, the same two sizes.
# Work files live under $BUILD/bench-punch (the real disk), removed at the end.
# Usage: bench/load/punch.sh [--messages N] [--size S] [--defer RATE]
#        (defaults: 100,000 messages of 2KiB, 0.01)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh
MESSAGES=100000
SIZE=2KiB
DEFER=0.01
while [ $# -gt 0 ]; do
  case $1 in
    --messages) MESSAGES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --defer) DEFER=$2; shift 2 ;;
    *) die "unknown option '$1' (usage: $me [--messages N] [--size S] [--defer RATE])" ;;
  esac
done
[[ $MESSAGES =~ ^[1-9][0-9]*$ ]] || die "--messages: a positive count, not '$MESSAGES'"
[[ $DEFER =~ ^(0(\.[0-9]+)?|1(\.0+)?)$ ]] || die "--defer: a fraction 0..1, not '$DEFER'"
BUILD=${BUILD:-build}
TIMEOUT=${TIMEOUT:-1800}
FIRST_SALVOD=${MAIN_SALVOD:-$BUILD/salvod}

ensure_built salvod salvo-blast salvo-sink salvoctl
[ -x "$FIRST_SALVOD" ] || die "MAIN_SALVOD=$FIRST_SALVOD is not an executable"

work="$root/$BUILD/bench-punch"
rm -rf "$work"; mkdir -p "$work"
cleanup() { stop_all; rm -rf "$work"; }
on_exit cleanup

# 4.2.1 (mailbox busy): the recipient is deferred, the destination not throttled.
start_mx_sinks "$work" 1 --defer-rate "$DEFER" --defer-status 4.2.1 --cores 1
port=$(free_port)
routes=()
for i in $(seq 0 99); do routes+=(--route "d$i.bench.test" "127.0.0.2:$sink_port"); done
config() {  # file punch-interval
  write_salvod_config "$1" "$work" --listen "$port" --retry 1h --cores 2 \
    --node "spool_punch_interval = \"$2\"" "${routes[@]}"
}
status_json() { "$BUILD/salvoctl" --config "$work/salvo.toml" status --json; }
queue_settled() {  # nothing ready or in flight, everything accepted is in the queue or out
  status_json | python3 -c "
import json, sys
q = json.load(sys.stdin)['queue']
sys.exit(0 if q['ready'] == 0 and q['in_flight'] == 0 and q['recipients'] == q['deferred'] else 1)"
}
sizes() {  # label: du's allocated size and the apparent size of the spool
  local alloc apparent
  alloc=$(du -sk "$work/spool" | cut -f1)
  apparent=$(du -sk --apparent-size "$work/spool" | cut -f1)
  # Per segment and note: allocated bytes, size, name.
  for f in "$work"/spool/shard-*/seg-*; do
    echo "   $(($(stat -c '%b * %B' "$f"))) $(stat -c '%s' "$f") ${f#"$work"/spool/}"
  done
  echo "$1: allocated $((alloc / 1024)) MiB ($(du -sh "$work/spool" | cut -f1)), apparent" \
    "$((apparent / 1024)) MiB"
}

echo "== $MESSAGES messages of $SIZE, $DEFER of the RCPTs deferred (retry in 1 h)"
echo "   first salvod: $FIRST_SALVOD (no punching)"
if [ -n "${MAIN_SALVOD:-}" ]; then  # an older build may not know the key
  write_salvod_config "$work/salvo.toml" "$work" --listen "$port" --retry 1h --cores 2 \
    "${routes[@]}"
else
  config "$work/salvo.toml" 0s
fi
SALVOD=$FIRST_SALVOD start_salvod "$work/salvo.toml" --log-level info || die_start
timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$port" --size "$SIZE" \
  --connections 50 --messages "$MESSAGES" --domains 100 --domain-suffix bench.test --json \
  > "$work/blast.json"
accepted=$(json_field "$work/blast.json" "j['accepted']")
[ "$accepted" = "$MESSAGES" ] || die "accepted $accepted of $MESSAGES"
wait_until "$TIMEOUT" 1 queue_settled || die "the queue did not settle in $TIMEOUT s"
deferred=$(status_json |
  python3 -c "import json, sys; print(json.load(sys.stdin)['queue']['deferred'])")
echo "delivered $(sink_messages), deferred $deferred"
sizes before
stop_salvod

echo "== this build, spool_punch_interval = 1s"
config "$work/salvo.toml" 1s
start_salvod "$work/salvo.toml" --log-level info || die_start
punched() {
  status_json | python3 -c "
import json, sys
m = json.load(sys.stdin)['metrics']
print(int(sum(v for k, v in m.items() if k.startswith('salvo_spool_punched_segments_total'))))"
}
last=-1; same_since=$(now); t0=$(now)
while :; do
  n=$(punched)
  if [ "$n" != "$last" ]; then last=$n; same_since=$(now); fi
  if [ "$n" -gt 0 ] && [ "$(calc "$(now) - $same_since > 5")" = True ]; then break; fi
  [ "$(calc "$(now) - $t0 < $TIMEOUT")" = True ] || die "punching did not settle"
  sleep 0.5
done
echo "punched $last segment(s) in $(calc "round($same_since - $t0, 1)") s after the start"
sizes after
stop_salvod
