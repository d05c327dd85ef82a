#!/usr/bin/env bash
# End-to-end benchmark: how fast mail gets *through*: accepted over SMTP,
# durably queued (fsync on), and delivered over SMTP to ten MX hosts, in one run on one
# machine, against a tuned Postfix relaying the same work to the same MX hosts.
#
#   sinks    one salvo-sink listening on 127.0.0.2 .. 127.0.0.11 (one free port), counting;
#            its --progress-file says when N messages have arrived
#   salvod   salvo-blast (CONNS connections, BDAT, WINDOW messages in flight each) -> salvod
#            (fsync on; [routes] send domain dI.SUFFIX to 127.0.0.(2 + I % 10); [[shaping]]
#            "*" max_connections 20, max_messages_per_connection 1000) -> sinks
#   Postfix  the same salvo-blast -> a private Postfix instance (own main.cf/master.cf in a
#            temp dir; transport_maps dI.SUFFIX -> smtp:[127.0.0.(2 + I % 10)]:PORT; relay for
#            127.0.0.0/8; tuned: no in_flow_delay, concurrency 20 per MX host from the start,
#            connection cache, no client limits) -> the same sinks
#   drain    salvod's spool filled with N messages while delivery is held ([[shaping]] "*"
#            max_connections = 0), salvod stopped (SIGTERM), started again with the normal
#            config: the time from that start until the sinks have all N messages
# For 1 KiB and 10 KiB bodies, MESSAGES messages each (default 100,000), spread over 100
# recipient domains, one recipient each.
# delivered msgs/s = N / (time from the blast's start until the sinks' progress file shows
# N more messages); the progress file is rewritten every 100 ms, so each time carries up
# to ~0.1 s of slack. Every wait is bounded (TIMEOUT seconds, default 900).
# Usage: bench/load/e2e.sh [--messages N] [--pfx-messages N] [--sizes "1024 10240"]
#                          [--only salvod|postfix] [--quick]
#   --quick: 10,000 messages (Postfix: 5,000), 1 KiB only.
# Environment: BUILD (default build), WORK_DIR (default $BUILD/bench-e2e: spool and work
#   files, on the real disk; removed at the end), CONNS (50), WINDOW (16), TIMEOUT (900),
#   PFX_CHUNKING (1: Postfix also gets --chunking; 0: DATA).
# Exit: 0 when every measurement completed, 1 otherwise (the table is printed either way).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh

MESSAGES=${MESSAGES:-100000}
PFX_MESSAGES=${PFX_MESSAGES:-}
SIZES=${SIZES:-"1024 10240"}
CONNS=${CONNS:-50}
WINDOW=${WINDOW:-16}
TIMEOUT=${TIMEOUT:-900}
PFX_CHUNKING=${PFX_CHUNKING:-1}
BUILD=${BUILD:-build}
ONLY=""
SUFFIX=e2e.test
DOMAINS=100
MX_HOSTS=10
while [ $# -gt 0 ]; do
  case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --pfx-messages) PFX_MESSAGES=${2:?}; shift 2 ;;
    --sizes) SIZES=${2:?}; shift 2 ;;
    --only) ONLY=${2:?}; shift 2 ;;
    --quick) MESSAGES=10000; PFX_MESSAGES=5000; SIZES=1024; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "e2e.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
PFX_MESSAGES=${PFX_MESSAGES:-$MESSAGES}
case $ONLY in ""|salvod|postfix) ;; *) echo "e2e.sh: --only salvod or postfix" >&2; exit 2 ;; esac
for v in "$MESSAGES" "$PFX_MESSAGES"; do
  case $v in ''|*[!0-9]*|0) echo "e2e.sh: message counts must be positive numbers" >&2; exit 2 ;; esac
done
run_salvod=1; run_pfx=1
[ "$ONLY" = postfix ] && run_salvod=0
[ "$ONLY" = salvod ] && run_pfx=0

if [ ! -x "$BUILD/salvod" ] || [ ! -x "$BUILD/salvo-blast" ] || [ ! -x "$BUILD/salvo-sink" ]; then
  tools/install_deps.sh
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$BUILD" --target salvod salvo-blast salvo-sink
fi
if [ "$run_pfx" = 1 ]; then ensure_postfix; fi

# Work files on the real disk (the spool must honour fsync as in production).
work=${WORK_DIR:-"$root/$BUILD/bench-e2e"}
rm -rf "$work"; mkdir -p "$work"
sink_pid=""
salvod_pid=""
pfx_conf="$work/postfix/conf"
stop_pid() {  # pid: SIGTERM, up to 60 s, then SIGKILL
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$salvod_pid"
  [ -f "$pfx_conf/main.cf" ] && { postfix -c "$pfx_conf" stop >/dev/null 2>&1 || true; }
  stop_pid "$sink_pid"
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }
json_field() { python3 -c "import json; j=json.load(open('$1')); print($2)"; }

# Results: key=value lines, formatted at the end.
results="$work/results"
: > "$results"
failures=0
result() { echo "$1=$2" >> "$results"; }
fail_row() {  # key reason
  echo "e2e.sh: $1: $2" >&2
  result "$1" "n/a"
  result "$1.why" "$2"
  failures=$((failures + 1))
}

# ---- the MX hosts: one salvo-sink on 127.0.0.2 .. 127.0.0.11 ---------------------------
mx_free() {  # port: free on every MX address?
  python3 - "$1" "$MX_HOSTS" <<'EOF'
import socket, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
for i in range(n):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((f"127.0.0.{2 + i}", port))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}
sink_port=""
for _ in $(seq 1 20); do
  p=$(free_port)
  if mx_free "$p"; then sink_port=$p; break; fi
done
[ -n "$sink_port" ] || { echo "e2e.sh: no port free on all of 127.0.0.2-11" >&2; exit 1; }
listen_args=()
for i in $(seq 0 $((MX_HOSTS - 1))); do listen_args+=(--listen "127.0.0.$((2 + i)):$sink_port"); done
"$BUILD/salvo-sink" "${listen_args[@]}" --ready-file "$work/sink.ready" \
  --progress-file "$work/sink.progress" > "$work/sink.json" 2> "$work/sink.err" &
sink_pid=$!
for _ in $(seq 1 400); do [ -s "$work/sink.ready" ] && break; sleep 0.05; done
[ -s "$work/sink.ready" ] || { echo "e2e.sh: salvo-sink did not start:" >&2; cat "$work/sink.err" >&2; exit 1; }

sink_messages() {  # the sinks' running total
  local text
  text=$(cat "$work/sink.progress" 2>/dev/null || true)
  if [[ $text =~ \"messages\":\ ([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}
# Polls the progress file until it shows at least $1 messages; sets reached_at (epoch s).
# Bounded: gives up after $2 seconds (returns 1).
reached_at=""
wait_sink() {
  local target=$1 limit deadline_ns n
  limit=$2
  deadline_ns=$(( $(date +%s%N) + limit * 1000000000 ))
  while :; do
    n=$(sink_messages)
    if [ "$n" -ge "$target" ]; then reached_at=$(now); return 0; fi
    [ "$(date +%s%N)" -lt "$deadline_ns" ] || return 1
    sleep 0.02
  done
}

# ---- salvod --------------------------------------------------------------------------------
write_salvod_config() {  # file hold(0|1) listen-port
  local f=$1 hold=$2 port=$3 i conns=20
  [ "$hold" = 1 ] && conns=0
  {
    cat <<EOF
# bench/load/e2e.sh: generated
[node]
hostname = "bench.test"
cores = 0
spool = "$work/salvod/spool"
log_dir = "$work/salvod/log"
control_socket = "$work/salvod/ctl.sock"
fsync = true
spool_reserve = "0"

[[listen]]
address = "127.0.0.1:$port"
max_connections_per_ip = 10000

[dns]
# Every domain has a route; nothing may leave the machine.
resolvers = ["127.0.0.1:53"]

[delivery]
smtp_port = $sink_port

[[shaping]]
domain = "*"
max_connections = $conns
max_messages_per_connection = 1000

[routes]
EOF
    for i in $(seq 0 $((DOMAINS - 1))); do
      echo "\"d$i.$SUFFIX\" = [\"127.0.0.$((2 + i % MX_HOSTS)):$sink_port\"]"
    done
  } > "$f"
}
# Starts salvod on a config; returns 1 (with the reason in $work/salvod/why) if it does not
# get ready within 60 s.
salvod_port=""
start_salvod() {  # hold(0|1)
  salvod_port=$(free_port)
  mkdir -p "$work/salvod"
  write_salvod_config "$work/salvod/salvo.toml" "$1" "$salvod_port"
  rm -f "$work/salvod/ready"
  "$BUILD/salvod" --config "$work/salvod/salvo.toml" --ready-file "$work/salvod/ready" \
    2>> "$work/salvod/stderr" &
  salvod_pid=$!
  for _ in $(seq 1 1200); do
    [ -s "$work/salvod/ready" ] && return 0
    kill -0 "$salvod_pid" 2>/dev/null || break
    sleep 0.05
  done
  tail -n 3 "$work/salvod/stderr" | tr '\n' ' ' > "$work/salvod/why"
  stop_pid "$salvod_pid"; salvod_pid=""
  return 1
}
stop_salvod() { stop_pid "$salvod_pid"; salvod_pid=""; }
delivered_lines() { cat "$work"/salvod/log/accounting*.jsonl 2>/dev/null | grep -c '"type":"delivered"' || true; }

blast_flags() {  # chunking(0|1)
  echo "--connections $CONNS --window $WINDOW --domains $DOMAINS --domain-suffix $SUFFIX"
  [ "$1" = 1 ] && echo "--chunking"
  return 0
}
# salvo-blast into 127.0.0.1:port; returns 1 unless all were accepted.
blast() {  # port size messages chunking
  local flags
  flags=$(blast_flags "$4")
  # shellcheck disable=SC2086  # flags is a list of words
  timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$1" --size "$2" --messages "$3" \
    $flags --timeout "${TIMEOUT}s" --json > "$work/blast.json" 2> "$work/blast.err" || return 1
  [ "$(json_field "$work/blast.json" "j['accepted']")" = "$3" ]
}

salvod_row() {  # size
  local size=$1 base t0 n
  rm -rf "$work/salvod"
  if ! start_salvod 0; then fail_row "salvod.$size" "salvod did not start: $(cat "$work/salvod/why")"; return; fi
  base=$(sink_messages)
  t0=$(now)
  if ! blast "$salvod_port" "$size" "$MESSAGES" 1; then
    fail_row "salvod.$size" "salvo-blast did not get $MESSAGES accepted: $(tail -c 300 "$work/blast.json" "$work/blast.err" | tr '\n' ' ')"
    stop_salvod; return
  fi
  result "salvod_accept.$size" "$(json_field "$work/blast.json" "j['msgs_per_s']")"
  if wait_sink $((base + MESSAGES)) "$TIMEOUT"; then
    result "salvod.$size" "$(calc "$MESSAGES / ($reached_at - $t0)")"
    sleep 0.3  # anything beyond N (duplicates) would show now
    result "salvod_extra.$size" "$(( $(sink_messages) - base - MESSAGES ))"
  else
    n=$(sink_messages)
    fail_row "salvod.$size" "timeout: the sinks got $((n - base)) of $MESSAGES in ${TIMEOUT}s"
  fi
  stop_salvod
  result "salvod_delivered_lines.$size" "$(delivered_lines)"
}

drain_row() {  # size
  local size=$1 base t0 n leaked
  rm -rf "$work/salvod"
  if ! start_salvod 1; then
    fail_row "drain.$size" "salvod refused the hold config ([[shaping]] max_connections = 0): $(cat "$work/salvod/why")"
    return
  fi
  base=$(sink_messages)
  if ! blast "$salvod_port" "$size" "$MESSAGES" 1; then
    fail_row "drain.$size" "salvo-blast did not get $MESSAGES accepted while held"
    stop_salvod; return
  fi
  sleep 1
  leaked=$(( $(sink_messages) - base ))
  result "drain_leaked.$size" "$leaked"
  stop_salvod
  t0=$(now)
  if ! start_salvod 0; then fail_row "drain.$size" "salvod did not restart: $(cat "$work/salvod/why")"; return; fi
  if wait_sink $((base + MESSAGES)) "$TIMEOUT"; then
    result "drain.$size" "$(calc "($MESSAGES - $leaked) / ($reached_at - $t0)")"
  else
    n=$(sink_messages)
    fail_row "drain.$size" "timeout: the sinks got $((n - base)) of $MESSAGES in ${TIMEOUT}s after the restart"
  fi
  stop_salvod
}

# ---- Postfix ---------------------------------------------------------------------------------
pfx_port=""
start_postfix() {
  pfx_port=$(free_port)
  local pw="$work/postfix" i
  mkdir -p "$pfx_conf" "$pw/queue" "$pw/data"
  # The stock master.cf without chroot (the queue is a temp dir with no /etc inside) and
  # with our listener instead of port 25.
  awk '/^[a-z]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf |
    sed '/^smtp *inet/d' > "$pfx_conf/master.cf"
  echo "127.0.0.1:$pfx_port inet n - n - - smtpd" >> "$pfx_conf/master.cf"
  : > "$pfx_conf/transport"
  for i in $(seq 0 $((DOMAINS - 1))); do
    echo "d$i.$SUFFIX smtp:[127.0.0.$((2 + i % MX_HOSTS))]:$sink_port" >> "$pfx_conf/transport"
  done
  cat > "$pfx_conf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pw/queue
data_directory = $pw/data
mail_owner = postfix
setgid_group = postdrop
myhostname = pfx.bench.test
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
transport_maps = texthash:$pfx_conf/transport
smtp_dns_support_level = disabled
smtp_tls_security_level = none
maillog_file = $pw/maillog
maillog_file_prefixes = $work
# Tuning for throughput: enough processes, no per-client limits, no inflow delay,
# full concurrency per MX host from the first message (no slow start), connections
# cached and reused (up to 1000 messages, as salvod's max_messages_per_connection).
default_process_limit = 250
in_flow_delay = 0
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_peername_lookup = no
smtpd_delay_reject = no
initial_destination_concurrency = 20
default_destination_concurrency_limit = 20
smtp_connection_cache_on_demand = yes
smtp_connection_reuse_count_limit = 1000
qmgr_message_active_limit = 50000
EOF
  chown postfix "$pw/data"
  postfix -c "$pfx_conf" check >/dev/null 2>&1 || true
  postfix -c "$pfx_conf" start >/dev/null 2>&1 || { tail -5 "$pw/maillog" >&2 || true; return 1; }
  wait_port "$pfx_port"
}
pfx_queued() { find "$work/postfix/queue/incoming" "$work/postfix/queue/active" \
  "$work/postfix/queue/deferred" "$work/postfix/queue/maildrop" -type f 2>/dev/null | wc -l; }

pfx_row() {  # size
  local size=$1 base t0 n
  base=$(sink_messages)
  t0=$(now)
  if ! blast "$pfx_port" "$size" "$PFX_MESSAGES" "$PFX_CHUNKING"; then
    fail_row "pfx.$size" "salvo-blast did not get $PFX_MESSAGES accepted by Postfix: $(tail -c 300 "$work/blast.json" "$work/blast.err" | tr '\n' ' ')"
    return
  fi
  result "pfx_accept.$size" "$(json_field "$work/blast.json" "j['msgs_per_s']")"
  if wait_sink $((base + PFX_MESSAGES)) "$TIMEOUT"; then
    result "pfx.$size" "$(calc "$PFX_MESSAGES / ($reached_at - $t0)")"
  else
    n=$(sink_messages)
    fail_row "pfx.$size" "timeout: the sinks got $((n - base)) of $PFX_MESSAGES in ${TIMEOUT}s; $(pfx_queued) still queued; $(tail -n 2 "$work/postfix/maillog" | tr '\n' ' ')"
  fi
  # Bounded: let the queue empty before the next row.
  for _ in $(seq 1 600); do [ "$(pfx_queued)" = 0 ] && break; sleep 0.1; done
}

# ---- runs ----------------------------------------------------------------------------------
pfx_mode="BDAT (--chunking --window $WINDOW)"
[ "$PFX_CHUNKING" = 1 ] || pfx_mode="DATA (--window $WINDOW)"
echo "== e2e: $MESSAGES messages per salvod row (Postfix: $PFX_MESSAGES), sizes: $SIZES; $CONNS connections; $DOMAINS domains -> $MX_HOSTS salvo-sink MX hosts (127.0.0.2-11:$sink_port); $(nproc) cores"
if [ "$run_salvod" = 1 ]; then
  for size in $SIZES; do
    echo "-- salvod, $size-byte bodies"
    salvod_row "$size"
    echo "-- salvod backlog drain, $size-byte bodies"
    drain_row "$size"
  done
fi
if [ "$run_pfx" = 1 ]; then
  if start_postfix; then
    for size in $SIZES; do
      echo "-- Postfix, $size-byte bodies, client in $pfx_mode"
      pfx_row "$size"
    done
    postfix -c "$pfx_conf" stop >/dev/null 2>&1 || true
  else
    for size in $SIZES; do fail_row "pfx.$size" "Postfix did not start"; done
  fi
fi
stop_pid "$sink_pid"; sink_pid=""

# ---- report ----------------------------------------------------------------------------------
python3 - "$results" "$(nproc)" "$MESSAGES" "$PFX_MESSAGES" "$SIZES" "$pfx_mode" "$CONNS" "$WINDOW" <<'EOF'
import sys
path, cores, n, pn, sizes, pfx_mode, conns, window = sys.argv[1:9]
cores, sizes = int(cores), [int(s) for s in sizes.split()]
r = {}
for line in open(path):
    k, _, v = line.rstrip("\n").partition("=")
    r[k] = v
def num(k):
    try:
        return float(r[k])
    except (KeyError, ValueError):
        return None
def fmt(v, suffix=""):
    return "n/a" if v is None else f"{v:,.0f}{suffix}"
label = lambda s: f"{s // 1024} KiB" if s % 1024 == 0 else f"{s} B"
print()
print(f"End to end: salvo-blast ({conns} connections, pipelined, BDAT window {window}) -> MTA (fsync on) -> "
      f"salvo-sink x10 MX hosts, 100 domains")
print(f"salvod rows: {int(n):,} messages; Postfix rows: {int(pn):,} messages, client in {pfx_mode}")
print(f"{cores} cores, shared by the client, the MTA and the sinks: per-core figures are msgs/s / {cores}")
print()
w = 14
print(f"{'msgs/s':<34}" + "".join(f"{label(s):>{w}}" for s in sizes))
rows = [
    ("salvod accepted (blast)", "salvod_accept"),
    ("salvod delivered", "salvod"),
    ("  per core", "salvod", cores),
    ("Postfix accepted (blast)", "pfx_accept"),
    ("Postfix delivered", "pfx"),
    ("  per core", "pfx", cores),
    ("salvod backlog drain", "drain"),
    ("  per core", "drain", cores),
]
for name, key, *div in rows:
    if all(num(f"{key}.{s}") is None and f"{key}.{s}.why" not in r for s in sizes):
        continue  # not run (--only)
    cells = []
    for s in sizes:
        v = num(f"{key}.{s}")
        if v is not None and div:
            v /= div[0]
        cells.append(fmt(v))
    print(f"{name:<34}" + "".join(f"{c:>{w}}" for c in cells))
cells = []
for s in sizes:
    a, b = num(f"salvod.{s}"), num(f"pfx.{s}")
    cells.append("n/a" if a is None or b is None else f"{a / b:.1f}x")
print(f"{'salvod / Postfix (delivered)':<34}" + "".join(f"{c:>{w}}" for c in cells))
print()
print("Targets: delivered >= 20,000 msgs/s, >= 30x Postfix, backlog drain >= 30,000 msgs/s")
for s in sizes:
    a, b, d = num(f"salvod.{s}"), num(f"pfx.{s}"), num(f"drain.{s}")
    def verdict(ok):
        return "n/a" if ok is None else ("met" if ok else "NOT met")
    print(f"  {label(s)}: delivered {verdict(None if a is None else a >= 20000)}, "
          f"ratio {verdict(None if a is None or b is None else a / b >= 30)}, "
          f"drain {verdict(None if d is None else d >= 30000)}")
notes = []
for s in sizes:
    for k, what in (("salvod_extra", "messages beyond N at the sinks (duplicates)"),
                    ("drain_leaked", "messages delivered while held")):
        v = r.get(f"{k}.{s}")
        if v not in (None, "0"):
            notes.append(f"  {label(s)}: {v} {what}")
    v = r.get(f"salvod_delivered_lines.{s}")
    if v is not None and num(f"salvod.{s}") is not None and v != n:
        notes.append(f"  {label(s)}: accounting.jsonl has {v} 'delivered' lines for {n} messages")
for k, v in r.items():
    if k.endswith(".why"):
        notes.append(f"  {k[:-4]}: {v}")
if notes:
    print()
    print("Notes:")
    print("\n".join(notes))
EOF
[ "$failures" = 0 ]
