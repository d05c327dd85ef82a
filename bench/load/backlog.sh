#!/usr/bin/env bash
# Backlog restart benchmark (issue 15, its first part): how soon salvod takes mail again
# after a kill -9 or a clean stop over a big spool, and how long until the whole spool is
# recovered.
#   1. salvod, delivery held ([[shaping]] "*" max_connections = 0), takes MESSAGES messages
#      of SIZE over SMTP (salvo-blast, 50 connections, BDAT, 16 in flight); then kill -9.
#   2. For background_recovery = false (the old start-up: the spool is read before anything
#      opens) and then true: start salvod, send one message with Python's smtplib, retried
#      every 10 ms until it is answered 250 (time to the first 250 from the exec), wait for
#      "spool recovery finished" (time to full recovery), note the RSS, kill -9.
#   3. Clean stops (docs/spool-format.md §10): for [node] checkpoint = false and then true,
#      start salvod (background recovery), wait until it has recovered, stop it with
#      SIGTERM (the stop's duration is noted: it writes the checkpoint), then start and
#      measure as in 2 (background_recovery = true).
# The page cache is warm (the spool was just written); with --cold each start is preceded
# by `echo 3 > /proc/sys/vm/drop_caches` (needs root; the run says when it could not).
# Work files live under $BUILD/bench-backlog (the real disk), removed at the end; the run
# checks the free space first (the spool takes ~1.15 x MESSAGES x SIZE).
# With --job N instead: one .json bulk job of N recipients (1,000 domains), written by a
# small generator into pickup/ of a salvod with delivery held; once it is queued (the file
# gone) and salvod's RSS has settled, the RSS is noted; kill -9; salvod restarts (background
# recovery) and its RSS is noted again once recovery has finished and the RSS settled.
# With --deliver, last: salvod starts once more with delivery released (20 connections per
# domain, [routes] to one salvo-sink on 127.0.0.2 .. 127.0.0.11) and delivers the whole
# spool: the time from its start until the sinks have every message, the rate, and the
# counts (messages queued, delivered, duplicates: exact when the sinks got each once and
# salvod's queue is empty at the end).
# --queue-in-memory N sets [delivery] queue_in_memory (ready recipients per destination in
# RAM; the rest wait in the spill files; 0: all in RAM). The messages go to 100 domains, so
# at the default of 10,000 nothing spills below 1,000,000 messages.
# Usage: bench/load/backlog.sh [--messages N] [--size S] [--cold] [--deliver]
#                              [--queue-in-memory N]
#        bench/load/backlog.sh --job N
#        (defaults: 1,000,000 messages of 2KiB)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh
MESSAGES=1000000
SIZE=2KiB
COLD=0
DELIVER=0
JOB=0
QUEUE_IN_MEMORY=""
while [ $# -gt 0 ]; do
  case $1 in
    --queue-in-memory) QUEUE_IN_MEMORY=$2; shift 2 ;;
    --messages) MESSAGES=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --cold) COLD=1; shift ;;
    --deliver) DELIVER=1; shift ;;
    --job) JOB=$2; shift 2 ;;
    *) die "unknown option '$1' (usage: $me [--messages N] [--size S] [--cold] [--deliver]" \
         "[--queue-in-memory N] | --job N)" ;;
  esac
done
[[ "$JOB" =~ ^[0-9]+$ ]] || die "--job takes a recipient count, got '$JOB'"
[[ "$QUEUE_IN_MEMORY" =~ ^[0-9]*$ ]] || die "--queue-in-memory takes a count"
config_extra=()
[ -z "$QUEUE_IN_MEMORY" ] || config_extra=(--delivery "queue_in_memory = $QUEUE_IN_MEMORY")
BUILD=${BUILD:-build}
TIMEOUT=${TIMEOUT:-1800}

ensure_built salvod salvo-blast salvo-sink salvoctl

work="$root/$BUILD/bench-backlog"
rm -rf "$work"; mkdir -p "$work"
cleanup() { stop_all; rm -rf "$work"; }
on_exit cleanup

# The RSS of salvod (KiB) once it has held still (within 1 MiB) for 2 s.
settled_rss() {
  local last=-1 now still=0
  while [ "$still" -lt 4 ]; do
    sleep 0.5
    now=$(awk '/^VmRSS/ {print $2}' "/proc/$salvod_pid/status")
    if [ $((now - last)) -lt 1024 ] && [ $((last - now)) -lt 1024 ]; then
      still=$((still + 1))
    else
      still=0
    fi
    last=$now
  done
  echo "$last"
}

if [ "$JOB" -gt 0 ]; then
  # ~40 bytes a recipient in the file, ~35 in the spool, ~250 in the accounting log.
  need=$((JOB * 330 + (1 << 30)))
  free=$(($(stat -f -c '%a * %S' "$work")))
  [ "$free" -gt "$need" ] ||
    die "needs ~$((need >> 20)) MiB free under $work, has $((free >> 20)) MiB"
  port=$(free_port)
  write_salvod_config "$work/salvo.toml" "$work" --listen "$port" --hold --pickup \
    "${config_extra[@]}"
  mkdir -p "$work/pickup/tmp"
  echo "== writing a job of $JOB recipients"
  python3 - "$work/pickup/tmp/job.json" "$JOB" <<'PY'
import sys
n = int(sys.argv[2])
with open(sys.argv[1], "w") as f:
    f.write('{"from": "bounces@esp.example", "job": "bench", "content": '
            '"From: Shop <shop@esp.example>\\nSubject: Hi {{n}}\\n\\nHello {{n}}\\n", '
            '"recipients": [\n')
    for i in range(0, n, 10000):
        f.write(",\n".join(f'{{"email": "u{k}@d{k % 1000}.example", "vars": {{"n": "{k}"}}}}'
                           for k in range(i, min(n, i + 10000))))
        f.write(",\n" if i + 10000 < n else "\n")
    f.write("]}\n")
PY
  job_mb=$(du -sm "$work/pickup/tmp/job.json" | cut -f1)
  start_salvod "$work/salvo.toml" --log-level info || die_start
  t0=$EPOCHREALTIME
  mv "$work/pickup/tmp/job.json" "$work/pickup/job.json"
  deadline=$((SECONDS + TIMEOUT))
  while [ -e "$work/pickup/job.json" ] ||
    [ -n "$(find "$work/pickup/.work" -type f 2>/dev/null | head -n 1)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the job was not queued within ${TIMEOUT}s"
    [ ! -e "$work/pickup/failed/job.json" ] || die "the job went to pickup/failed/"
    sleep 0.2
  done
  intake_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
  rss_intake=$(settled_rss)
  kill -9 "$salvod_pid"; wait "$salvod_pid" 2>/dev/null || true; salvod_pid=""
  spool_mb=$(du -sm "$work/spool" | cut -f1)
  echo "   queued in ${intake_s}s; RSS $((rss_intake / 1024)) MiB; spool $spool_mb MiB;" \
    "job file $job_mb MiB; killed -9"
  : > "$work/restart.log"
  t0=$EPOCHREALTIME
  "$BUILD/salvod" --config "$work/salvo.toml" --log-level info 2> "$work/restart.log" &
  salvod_pid=$!
  until grep -q "spool recovery finished" "$work/restart.log"; do
    [ "$SECONDS" -lt "$deadline" ] || die "no 'spool recovery finished' within ${TIMEOUT}s"
    kill -0 "$salvod_pid" 2>/dev/null || die "salvod exited: $(tail -n 5 "$work/restart.log")"
    sleep 0.1
  done
  recovered_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
  rss_restart=$(settled_rss)
  kill -9 "$salvod_pid"; wait "$salvod_pid" 2>/dev/null || true; salvod_pid=""
  echo
  echo "one .json job of $JOB recipients, delivery held (spool $spool_mb MiB)"
  printf '| %-12s | %10s | %16s | %13s | %17s |\n' "recipients" "intake (s)" \
    "RSS queued (MiB)" "recovered (s)" "RSS restart (MiB)"
  printf '|%s|%s|%s|%s|%s|\n' "--------------" "------------" "------------------" \
    "---------------" "-------------------"
  printf '| %-12s | %10s | %16s | %13s | %17s |\n' "$JOB" "$intake_s" \
    "$((rss_intake / 1024))" "$recovered_s" "$((rss_restart / 1024))"
  exit 0
fi

size_bytes=$(python3 -c "
import re, sys
m = re.fullmatch(r'(\d+)\s*(KiB|KB|MiB|MB|)', '$SIZE')
if not m: sys.exit('bad --size')
print(int(m[1]) * {'': 1, 'KB': 1000, 'KiB': 1024, 'MB': 10**6, 'MiB': 2**20}[m[2]])")
need=$((MESSAGES * size_bytes * 115 / 100 + (1 << 30)))
free=$(($(stat -f -c '%a * %S' "$work")))
[ "$free" -gt "$need" ] ||
  die "needs ~$((need >> 20)) MiB free under $work, has $((free >> 20)) MiB"

port=$(free_port)
write_salvod_config "$work/salvo.toml" "$work" --listen "$port" --hold "${config_extra[@]}"

echo "== filling the spool: $MESSAGES messages of $SIZE over SMTP (delivery held)"
start_salvod "$work/salvo.toml" --log-level info || die_start
t0=$EPOCHREALTIME
timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$port" --size "$SIZE" \
  --connections 50 --chunking --window 16 --messages "$MESSAGES" --domains 100 --json \
  > "$work/blast.json"
python3 - "$work/blast.json" "$MESSAGES" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["accepted"] == int(sys.argv[2]), j
EOF
fill_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
rss_filled=$(awk '/^VmRSS/ {print $2}' "/proc/$salvod_pid/status")
kill -9 "$salvod_pid"; wait "$salvod_pid" 2>/dev/null || true; salvod_pid=""
spool_mb=$(du -sm "$work/spool" | cut -f1)
echo "   took ${fill_s}s; RSS $((rss_filled / 1024)) MiB; spool $spool_mb MiB; killed -9"

# Sets [node] KEY = VALUE in the config.
set_node_key() {  # key value
  sed -i "/^$1 = /d" "$work/salvo.toml"
  sed -i "/^\[node\]\$/a $1 = $2" "$work/salvo.toml"
}

# Starts salvod, waits for its recovery to finish, stops it with SIGTERM and prints how
# long the stop took (s).
clean_stop() {
  : > "$work/prepare.log"
  "$BUILD/salvod" --config "$work/salvo.toml" 2> "$work/prepare.log" &
  salvod_pid=$!
  local deadline=$((SECONDS + TIMEOUT))
  until grep -q "spool recovery finished" "$work/prepare.log"; do
    [ "$SECONDS" -lt "$deadline" ] || die "no 'spool recovery finished' within ${TIMEOUT}s"
    kill -0 "$salvod_pid" 2>/dev/null || die "salvod exited: $(tail -n 5 "$work/prepare.log")"
    sleep 0.1
  done
  local t0=$EPOCHREALTIME
  kill -TERM "$salvod_pid"; wait "$salvod_pid" || die "salvod's stop failed"; salvod_pid=""
  python3 -c "print(f'{$EPOCHREALTIME - $t0:.2f}')"
  grep -h "checkpoint" "$work/prepare.log" | sed 's/^/   /' >&2 || true
}

# One restart: prints "first_250_s full_s rss_mib recovered" on stdout.
restart() {  # background_recovery(true|false)
  set_node_key background_recovery "$1"
  if [ "$COLD" = 1 ]; then
    sync
    echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || echo "   (could not drop the page cache)" >&2
  fi
  : > "$work/restart.log"
  local t_exec=$EPOCHREALTIME
  "$BUILD/salvod" --config "$work/salvo.toml" 2> "$work/restart.log" &
  salvod_pid=$!
  python3 - "$port" "$t_exec" "$work/restart.log" "$salvod_pid" "$TIMEOUT" <<'EOF'
import os, re, smtplib, sys, time
port, t_exec, log = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
pid, limit = int(sys.argv[4]), float(sys.argv[5])
deadline = time.time() + limit
first = None
while first is None:
    if time.time() > deadline:
        sys.exit("no 250 within the time limit")
    try:
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as s:
            s.sendmail("probe@bench.test", ["probe@d0.example.test"],
                       "Subject: probe\r\n\r\nprobe\r\n")
            first = time.time() - t_exec
    except (OSError, smtplib.SMTPException):
        time.sleep(0.01)
full, recovered = None, None
while full is None:
    if time.time() > deadline:
        sys.exit("no 'spool recovery finished' within the time limit")
    m = re.search(r"spool recovery finished: recovered_messages=(\d+)", open(log).read())
    if m:
        full, recovered = time.time() - t_exec, int(m[1])
    else:
        time.sleep(0.01)
rss = 0
for line in open(f"/proc/{pid}/status"):
    if line.startswith("VmRSS"):
        rss = int(line.split()[1]) // 1024
print(f"{first:.2f} {full:.2f} {rss} {recovered}")
EOF
  kill -9 "$salvod_pid"; wait "$salvod_pid" 2>/dev/null || true; salvod_pid=""
  grep -h "recovered .* message(s)\|checkpoint" "$work/restart.log" | sed 's/^/   /' >&2 || true
}

declare -A row stop_s
for mode in false true; do
  echo "== restart after kill -9, background_recovery = $mode"
  row[$mode]=$(restart "$mode")
  echo "   ${row[$mode]}"
done
for ckpt in false true; do
  echo "== restart after a clean stop, checkpoint = $ckpt"
  set_node_key checkpoint "$ckpt"
  set_node_key background_recovery true
  stop_s[$ckpt]=$(clean_stop)
  echo "   the stop took ${stop_s[$ckpt]}s"
  row[clean-$ckpt]=$(restart true)
  echo "   ${row[clean-$ckpt]}"
done

cache=warm; [ "$COLD" = 0 ] || cache=cold
echo
echo "restart after kill -9 over $MESSAGES messages of $SIZE" \
  "(spool $spool_mb MiB, page cache $cache)"
printf '| %-26s | %14s | %16s | %8s | %11s |\n' "start-up" "first 250 (s)" "all recovered (s)" \
  "RSS MiB" "recovered"
printf '|%s|%s|%s|%s|%s|\n' "----------------------------" "----------------" \
  "------------------" "----------" "-------------"
for mode in false true; do
  read -r first full rss recovered <<< "${row[$mode]}"
  label="background_recovery=$mode"
  printf '| %-26s | %14s | %16s | %8s | %11s |\n' "$label" "$first" "$full" "$rss" "$recovered"
done
echo
echo "restart after a clean stop (SIGTERM), background_recovery = true"
printf '| %-26s | %8s | %14s | %16s | %8s | %11s |\n' "start-up" "stop (s)" "first 250 (s)" \
  "all recovered (s)" "RSS MiB" "recovered"
printf '|%s|%s|%s|%s|%s|%s|\n' "----------------------------" "----------" "----------------" \
  "------------------" "----------" "-------------"
for ckpt in false true; do
  read -r first full rss recovered <<< "${row[clean-$ckpt]}"
  printf '| %-26s | %8s | %14s | %16s | %8s | %11s |\n' "checkpoint=$ckpt" "${stop_s[$ckpt]}" \
    "$first" "$full" "$rss" "$recovered"
done

[ "$DELIVER" = 1 ] || exit 0
# ---- release and deliver everything ---------------------------------------------------------
echo
echo "== delivering the spool to salvo-sink (10 MX hosts, 20 connections per domain)"
start_mx_sinks "$work" 10
route_args=()
for i in $(seq 0 99); do
  route_args+=(--route "d$i.example.test" "127.0.0.$((2 + i % 10)):$sink_port")
done
write_salvod_config "$work/salvo.toml" "$work" --listen "$port" --max-connections 20 \
  --max-messages-per-connection 1000 "${route_args[@]}" "${config_extra[@]}"
status_json() { "$BUILD/salvoctl" --config "$work/salvo.toml" status --json 2>/dev/null; }
# What salvod holds once recovered: the messages of the fill and the restarts' probes.
recovered_log() { grep -c "spool recovery finished" "$work/salvod.log" 2>/dev/null || true; }
recoveries=$(recovered_log)
recovered() { [ "$(recovered_log)" -gt "$recoveries" ]; }
start_salvod "$work/salvo.toml" --log-level info || die_start
t0=$EPOCHREALTIME
wait_until "$TIMEOUT" 0.2 recovered || die "no 'spool recovery finished' within ${TIMEOUT}s"
queue_empty() {
  status_json | python3 -c "
import json, sys
q = json.load(sys.stdin)['queue']
sys.exit(0 if q['recipients'] == 0 and q['messages'] == 0 and q['in_flight'] == 0 else 1)"
}
wait_until "$TIMEOUT" 0.2 queue_empty || die "the queue did not empty within ${TIMEOUT}s"
deliver_s=$(python3 -c "print(f'{$EPOCHREALTIME - $t0:.1f}')")
read_sink_count
delivered=$sink_count
stop_salvod
queued=$((MESSAGES + 4))  # the fill and one probe per measured restart
echo
echo "release and deliver: $queued messages queued (the fill and four probes)"
printf '| %10s | %11s | %12s | %10s | %6s |\n' "queued" "delivered" "duplicates" "time (s)" \
  "msgs/s"
printf '|%s|%s|%s|%s|%s|\n' "------------" "-------------" "--------------" "------------" \
  "--------"
printf '| %10s | %11s | %12s | %10s | %6s |\n' "$queued" "$delivered" \
  "$((delivered > queued ? delivered - queued : 0))" "$deliver_s" \
  "$(python3 -c "print(round($delivered / $deliver_s))")"
[ "$delivered" = "$queued" ] || die "the sinks got $delivered messages, $queued were queued"
