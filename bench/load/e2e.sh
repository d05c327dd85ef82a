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
#   one hop  the same salvo-blast straight into the sink on 127.0.0.2: the limit of the
#            machine for a relay (which makes two such hops and writes the spool)
#   drain    salvod's spool filled with N messages while delivery is held ([[shaping]] "*"
#            max_connections = 0), salvod stopped (SIGTERM), started again with the normal
#            config: the time from that start until the sinks have all N messages
# For 1 KiB and 10 KiB bodies, MESSAGES messages each (default 100,000), spread over 100
# recipient domains, one recipient each.
# delivered msgs/s = N / (time from the blast's start until the sinks' progress file shows
# N more messages); the progress file is rewritten every 100 ms, so each time carries up
# to ~0.1 s of slack. Every wait is bounded (TIMEOUT seconds, default 900).
# Usage: bench/load/e2e.sh [--messages N] [--pfx-messages N] [--sizes "1024 10240"]
#                          [--only salvod|postfix] [--quick] [--dkim rsa|ed25519]
#   --quick: 10,000 messages (Postfix: 5,000), 1 KiB only.
#   --dkim: salvod only; each size delivered unsigned and then signed (a fresh RSA-2048 or
#           Ed25519 key for blast's From: domain), and the signed rate set against the
#           crypto-bound limit cores / (cores / unsigned + 1 / s), s being the fastest
#           single-core sign rate measured in the same run (`openssl speed`, or salvo's
#           own bench_dkim when it is faster). A third run per size takes the same
#           messages with delivery held (intake alone): signed accepted / held accepted
#           shows whether signing slows accepting.
# Environment: BUILD (default build), WORK_DIR (default $BUILD/bench-e2e: spool and work
#   files, on the real disk; removed at the end), CONNS (50), WINDOW (16), TIMEOUT (900),
#   PFX_CHUNKING (1: Postfix also gets --chunking; 0: DATA), FSYNC (true; false shows what
#   the disk's flushes cost).
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
FSYNC=${FSYNC:-true}  # false: where the disk's flushes bound the rate (never for the targets)
ONLY=""
DKIM=""
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
    --dkim) DKIM=${2:?}; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "e2e.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
PFX_MESSAGES=${PFX_MESSAGES:-$MESSAGES}
case $ONLY in ""|salvod|postfix) ;; *) echo "e2e.sh: --only salvod or postfix" >&2; exit 2 ;; esac
for v in "$MESSAGES" "$PFX_MESSAGES"; do
  case $v in ''|*[!0-9]*|0) echo "e2e.sh: message counts must be positive numbers" >&2; exit 2 ;; esac
done
case $DKIM in ""|rsa|ed25519) ;; *) echo "e2e.sh: --dkim rsa or ed25519" >&2; exit 2 ;; esac
run_salvod=1; run_pfx=1
[ "$ONLY" = postfix ] && run_salvod=0
[ "$ONLY" = salvod ] && run_pfx=0
[ -n "$DKIM" ] && run_pfx=0

ensure_built salvod salvo-blast salvo-sink
if [ "$run_pfx" = 1 ]; then ensure_postfix; fi

# Work files on the real disk (the spool must honour fsync as in production).
work=${WORK_DIR:-"$root/$BUILD/bench-e2e"}
rm -rf "$work"; mkdir -p "$work"
cleanup() { stop_all; rm -rf "$work"; }
on_exit cleanup

# Results: key=value lines, formatted at the end.
results="$work/results"
: > "$results"

# ---- the MX hosts: one salvo-sink on 127.0.0.2 .. 127.0.0.11 ---------------------------
start_mx_sinks "$work" "$MX_HOSTS"

# ---- salvod --------------------------------------------------------------------------------
# Every domain has a route to its MX host; the resolver is the loopback, so nothing may
# leave the machine.
route_args=()
for i in $(seq 0 $((DOMAINS - 1))); do
  route_args+=(--route "d$i.$SUFFIX" "127.0.0.$((2 + i % MX_HOSTS)):$sink_port")
done
# salvod on a fresh port: 20 connections per destination, or none while held.
salvod_port=""
dkim_args=()  # --dkim ...: the key salvod signs with, for the signed rows
run_salvod() {  # hold(0|1) [signed(0|1)]
  local conns=20
  local -a sign=()
  [ "$1" = 1 ] && conns=0
  [ "${2:-0}" = 1 ] && sign=("${dkim_args[@]}")
  salvod_port=$(free_port)
  mkdir -p "$work/salvod"
  write_salvod_config "$work/salvod/salvo.toml" "$work/salvod" --fsync "$FSYNC" --listen "$salvod_port" \
    --resolver 127.0.0.1:53 --smtp-port "$sink_port" --max-connections "$conns" \
    --max-messages-per-connection 1000 "${route_args[@]}" "${sign[@]}"
  start_salvod "$work/salvod/salvo.toml"
}
delivered_lines() { cat "$work"/salvod/log/accounting*.jsonl 2>/dev/null | grep -c '"type":"delivered"' || true; }

blast_flags() {  # chunking(0|1)
  echo "--connections $CONNS --window $WINDOW --domains $DOMAINS --domain-suffix $SUFFIX"
  # Signed runs: every message different, as real mail (one shared body would let salvod
  # reuse one signature for all of them).
  [ -n "$DKIM" ] && echo "--unique"
  [ "$1" = 1 ] && echo "--chunking"
  return 0
}
# salvo-blast into address:port (127.0.0.1:port); returns 1 unless all were accepted.
blast_to() {  # address:port size messages chunking
  local flags
  flags=$(blast_flags "$4")
  # shellcheck disable=SC2086  # flags is a list of words
  timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "$1" --size "$2" --messages "$3" \
    $flags --timeout "${TIMEOUT}s" --json > "$work/blast.json" 2> "$work/blast.err" || return 1
  [ "$(json_field "$work/blast.json" "j['accepted']")" = "$3" ]
}
blast() { blast_to "127.0.0.1:$1" "${@:2}"; }  # port size messages chunking

salvod_row() {  # size [key (salvod | signed)]
  local size=$1 key=${2:-salvod} base t0 n signed=0
  [ "$key" = signed ] && signed=1
  rm -rf "$work/salvod"
  if ! run_salvod 0 "$signed"; then fail_row "$key.$size" "salvod did not start: $(start_why)"; return; fi
  base=$(sink_messages)
  t0=$(now)
  if ! blast "$salvod_port" "$size" "$MESSAGES" 1; then
    fail_row "$key.$size" "salvo-blast did not get $MESSAGES accepted: $(tail -c 300 "$work/blast.json" "$work/blast.err" | tr '\n' ' ')"
    stop_salvod; return
  fi
  result "${key}_accept.$size" "$(json_field "$work/blast.json" "j['msgs_per_s']")"
  if wait_sink $((base + MESSAGES)) "$TIMEOUT"; then
    result "$key.$size" "$(calc "$MESSAGES / ($reached_at - $t0)")"
    # salvod's own CPU time (user + system, all threads) per message, intake and delivery:
    # unlike the rates it hardly moves when other work shares the box.
    result "${key}_cpu_us.$size" "$(calc "$(cpu_seconds "$salvod_pid") * 1e6 / $MESSAGES")"
    sleep 0.3  # anything beyond N (duplicates) would show now
    result "${key}_extra.$size" "$(( $(sink_messages) - base - MESSAGES ))"
  else
    n=$(sink_messages)
    fail_row "$key.$size" "timeout: the sinks got $((n - base)) of $MESSAGES in ${TIMEOUT}s"
  fi
  if [ "$signed" = 1 ]; then  # proof that it signed: DKIM signatures made and reused
    "$BUILD/salvoctl" --config "$work/salvod/salvo.toml" status --json > "$work/status.json" 2>/dev/null || true
    result "signed_signatures.$size" "$(json_field "$work/status.json" \
      "sum(v for k, v in j['metrics'].items() if k.startswith('salvo_dkim_signatures_total'))" 2>/dev/null || echo 0)"
  fi
  stop_salvod
  result "${key}_delivered_lines.$size" "$(delivered_lines)"
}

# The one-hop limit: the same salvo-blast straight into the sink on 127.0.0.2 (no MTA in
# between); the relay's delivered rate is set against it.
onehop_row() {  # size
  local size=$1
  if blast_to "127.0.0.2:$sink_port" "$size" "$MESSAGES" 1; then
    result "onehop.$size" "$(json_field "$work/blast.json" "j['msgs_per_s']")"
  else
    fail_row "onehop.$size" "salvo-blast -> salvo-sink did not finish: $(tail -c 300 "$work/blast.err" | tr '\n' ' ')"
  fi
}

# Intake alone: salvod (signing config, delivery held) takes MESSAGES from salvo-blast; the
# accepted rate the signed row's intake is set against (signing must not slow accepting).
held_accept_row() {  # size
  local size=$1
  rm -rf "$work/salvod"
  if ! run_salvod 1 1; then fail_row "held_accept.$size" "salvod did not start: $(start_why)"; return; fi
  if blast "$salvod_port" "$size" "$MESSAGES" 1; then
    result "held_accept.$size" "$(json_field "$work/blast.json" "j['msgs_per_s']")"
  else
    fail_row "held_accept.$size" "salvo-blast did not get $MESSAGES accepted while held"
  fi
  stop_salvod
}

drain_row() {  # size
  local size=$1 base t0 n leaked
  rm -rf "$work/salvod"
  if ! run_salvod 1; then
    fail_row "drain.$size" \
      "salvod refused the hold config ([[shaping]] max_connections = 0): $(start_why)"
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
  if ! run_salvod 0; then fail_row "drain.$size" "salvod did not restart: $(start_why)"; return; fi
  if wait_sink $((base + MESSAGES)) "$TIMEOUT"; then
    result "drain.$size" "$(calc "($MESSAGES - $leaked) / ($reached_at - $t0)")"
  else
    n=$(sink_messages)
    fail_row "drain.$size" "timeout: the sinks got $((n - base)) of $MESSAGES in ${TIMEOUT}s after the restart"
  fi
  stop_salvod
}

# ---- Postfix ---------------------------------------------------------------------------------
# Relays dI.SUFFIX to its MX host like salvod's [routes]: no DNS, no TLS.
run_postfix() {
  local i
  mkdir -p "$work/postfix"
  for i in $(seq 0 $((DOMAINS - 1))); do
    echo "d$i.$SUFFIX smtp:[127.0.0.$((2 + i % MX_HOSTS))]:$sink_port"
  done > "$work/postfix/transport"
  # Tuning for throughput: enough processes, full concurrency per MX host from the first
  # message (no slow start), connections cached and reused (up to 1000 messages, as
  # salvod's max_messages_per_connection).
  start_postfix "$work/postfix" "myhostname = pfx.bench.test
transport_maps = texthash:$work/postfix/transport
smtp_dns_support_level = disabled
smtp_tls_security_level = none
default_process_limit = 250
initial_destination_concurrency = 20
default_destination_concurrency_limit = 20
smtp_connection_cache_on_demand = yes
smtp_connection_reuse_count_limit = 1000
qmgr_message_active_limit = 50000"
}
pfx_queued() { find "$work/postfix/queue/incoming" "$work/postfix/queue/active" \
  "$work/postfix/queue/deferred" "$work/postfix/queue/maildrop" -type f 2>/dev/null | wc -l; }
pfx_empty() { [ "$(pfx_queued)" = 0 ]; }

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
  wait_until 60 0.1 pfx_empty || true
}

# ---- runs ----------------------------------------------------------------------------------
pfx_mode="BDAT (--chunking --window $WINDOW)"
[ "$PFX_CHUNKING" = 1 ] || pfx_mode="DATA (--window $WINDOW)"
echo "== e2e: $MESSAGES messages per salvod row (Postfix: $PFX_MESSAGES), sizes: $SIZES; $CONNS connections; $DOMAINS domains -> $MX_HOSTS salvo-sink MX hosts (127.0.0.2-11:$sink_port); $(nproc) cores"
if [ "$run_salvod" = 1 ] && [ -n "$DKIM" ]; then
  # blast's From: is blast@sender.example.
  if [ "$DKIM" = rsa ]; then
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/dkim.pem" 2>/dev/null
    dkim_args=(--dkim sender.example s1 "$work/dkim.pem" rsa-sha256)
  else
    openssl genpkey -algorithm ed25519 -out "$work/dkim.pem" 2>/dev/null
    dkim_args=(--dkim sender.example s1 "$work/dkim.pem" ed25519-sha256)
  fi
  speed=$(sign_rate "$DKIM")
  result "sign_rate" "$speed"
  for size in $SIZES; do
    echo "-- salvod, $size-byte bodies, unsigned"
    salvod_row "$size"
    echo "-- salvod, $size-byte bodies, $DKIM-signed"
    salvod_row "$size" signed
    echo "-- salvod, $size-byte bodies, delivery held (intake alone)"
    held_accept_row "$size"
  done
elif [ "$run_salvod" = 1 ]; then
  for size in $SIZES; do
    echo "-- salvod, $size-byte bodies"
    salvod_row "$size"
    echo "-- salvod backlog drain, $size-byte bodies"
    drain_row "$size"
    echo "-- one hop (salvo-blast -> salvo-sink), $size-byte bodies"
    onehop_row "$size"
  done
fi
if [ "$run_pfx" = 1 ]; then
  if run_postfix; then
    for size in $SIZES; do
      echo "-- Postfix, $size-byte bodies, client in $pfx_mode"
      pfx_row "$size"
    done
    stop_postfix
  else
    for size in $SIZES; do fail_row "pfx.$size" "Postfix did not start"; done
  fi
fi
stop_sink

# ---- report ----------------------------------------------------------------------------------
report "$results" "$(nproc)" "$MESSAGES" "$PFX_MESSAGES" "$SIZES" "$pfx_mode" "$CONNS" "$WINDOW" "$DKIM" <<'EOF'
import results, sys
path, cores, n, pn, sizes, pfx_mode, conns, window, dkim = sys.argv[1:10]
cores, sizes = int(cores), [int(s) for s in sizes.split()]
r = results.read(path)
def num(k):
    return results.number(r, k)
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
    ("salvod accepted, delivery held", "held_accept"),
    (f"salvod accepted, {dkim}-signed", "signed_accept"),
    (f"salvod delivered, {dkim}-signed", "signed"),
]
cpu_rows = [
    ("salvod CPU us per message", "salvod_cpu_us"),
    (f"  {dkim}-signed", "signed_cpu_us"),
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
def ratio_row(name, top, bottom, form):  # one cell per size: r[top.size] / r[bottom.size]
    cells = []
    for s in sizes:
        a, b = num(f"{top}.{s}"), num(f"{bottom}.{s}")
        cells.append("n/a" if a is None or not b else form.format(a / b))
    print(f"{name:<34}" + "".join(f"{c:>{w}}" for c in cells))
for name, key in cpu_rows:
    if all(num(f"{key}.{s}") is None for s in sizes):
        continue
    print(f"{name:<34}" + "".join(f"{fmt(num(f'{key}.{s}')):>{w}}" for s in sizes))
ratio_row("salvod / Postfix (delivered)", "salvod", "pfx", "{:.1f}x")
if any(num(f"onehop.{s}") is not None for s in sizes):
    cells = [fmt(num(f"onehop.{s}")) for s in sizes]
    print(f"{'one hop (blast -> sink)':<34}" + "".join(f"{c:>{w}}" for c in cells))
    ratio_row("salvod delivered / one hop", "salvod", "onehop", "{:.2f}")
if dkim:
    s_rate = num("sign_rate")
    cells, fracs = [], []
    for s in sizes:
        u, g = num(f"salvod.{s}"), num(f"signed.{s}")
        limit = None if u is None or not s_rate else cores / (cores / u + 1 / s_rate)
        cells.append(fmt(limit))
        fracs.append("n/a" if limit is None or g is None else f"{100 * g / limit:.0f}%")
    print(f"{'crypto-bound limit':<34}" + "".join(f"{c:>{w}}" for c in cells))
    print(f"{'signed / limit':<34}" + "".join(f"{c:>{w}}" for c in fracs))
    ratio_row("signed accepted / held accepted", "signed_accept", "held_accept", "{:.2f}")
    print(f"(limit = {cores} / ({cores} / unsigned + 1 / s); s = the fastest single-core "
          f"{dkim} sign rate in this run, OpenSSL's or salvo's: {fmt(s_rate)}/s)")
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
    v = r.get(f"signed_signatures.{s}")
    if dkim and num(f"signed.{s}") is not None and (v is None or float(v) < int(n)):
        notes.append(f"  {label(s)}: only {v} DKIM signatures counted for {n} signed messages")
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
