#!/usr/bin/env bash
# What authenticated outbound TLS costs end to end: the work of bench/load/e2e.sh's salvod
# row (salvo-blast -> salvod, fsync on -> salvo-sink on ten MX hosts), but every domain is
# delivered through DNS (MX records, no [routes]: MTA-STS and DANE never apply to routes)
# and every session is TLS, under three outbound policies, rows interleaved:
#
#   opportunistic  [[shaping]] "*" tls = "opportunistic", mta_sts = false, dane = false:
#                  STARTTLS to the same sinks, certificate not checked (the baseline)
#   mta-sts        mta_sts = true: every domain publishes an enforce policy listing its
#                  MX; sessions verified (chain against the test CA, MX name); the
#                  policies cached before the timed run (tls_policy "mta-sts")
#   dane           [dns] validating = true, dane = true, mta_sts = false: the zone is
#                  DNSSEC-signed, every MX host has a DANE-EE TLSA record (3 1 1) matching
#                  the sinks' key; TLSA answers cached before the timed run (tls_policy "dane")
#
# The world, all on loopback and made by the script:
#   CA       a test CA (openssl, P-256); the sinks' certificate names mx0..mx9.SUFFIX, the
#            policy server's mta-sts.dI.SUFFIX for every domain; salvod's [tls] ca_bundle
#   DNS      unbound on 127.0.0.1:(free port) serving SUFFIX from a zone file signed with
#            ldns-signzone (its DS is unbound's trust anchor, so answers carry AD): dI.SUFFIX
#            MX mx(I % 10).SUFFIX, mxK.SUFFIX A 127.0.0.(2 + K), _25._tcp.mxK TLSA,
#            _mta-sts.dI TXT "v=STSv1; id=1;", mta-sts.dI A 127.0.0.12; TTLs one hour
#   policy   tests/integration/sts_policy_server.py on 127.0.0.12 (HTTPS): "mode: enforce,
#            mx: *.SUFFIX, max_age: 86400" for every domain ([delivery] mta_sts_port)
#   sinks    one salvo-sink listening on 127.0.0.2 .. 127.0.0.11 (one free port) with
#            STARTTLS; its --progress-file says when N messages have arrived
#
# salvod: [[shaping]] "*" max_connections PER_DEST (default 1), max_messages_per_connection
# PER_CONN (default 10,000). Each row starts a fresh salvod (its caches empty), warms it
# with one message per domain (MX, address, MTA-STS policy and TLSA answers cached, a first
# connection per domain open; for the mta-sts row it also waits until every domain's policy
# was fetched), then times MESSAGES messages. With PER_DEST 1 the timed run reuses the warm
# connections and makes no handshake (each carries 1 + MESSAGES / DOMAINS messages, while
# that is at most PER_CONN), so what differs between the rows is the per-delivery policy
# work; with e2e.sh's 20 and 1,000 (PER_DEST=20 PER_CONN=1000) each row opens hundreds of
# connections, as many as the queue's dynamics ask for, and their number (printed) weighs
# more than the policies.
# delivered msgs/s = MESSAGES / (time from the blast's start until the sinks' progress file
# shows MESSAGES more; up to ~0.1 s of slack). A row whose timed deliveries were not all
# made under its policy (the accounting log's tls_policy), or whose policy cache missed
# during the timed run, is reported as failed. ROUNDS rounds; the medians and the ratios
# mta-sts / opportunistic and dane / opportunistic (target >= 0.98); each round begins with
# the next row.
#
# Usage: bench/load/tls_policy.sh [--messages N] [--rounds N] [--no-dane] [--quick]
#   --messages: default 500,000 (at 65,000 msgs/s a row takes under 8 s, so the progress
#   file's 0.1 s of slack is under 1.5%); --quick: 20,000 messages, one round.
# Environment: BUILD (default build), WORK_DIR (default $BUILD/bench-tls-policy; removed at
#   the end unless KEEP=1), SIZE (1024), CONNS (50), WINDOW (16), DOMAINS (100), TIMEOUT
#   (300 s per wait), FSYNC (true), ROWS (the rows to run, default all three), PER_DEST (1),
#   PER_CONN (10000), PERF (a directory: perf record -g of salvod during each timed run,
#   kept there).
# Exit: 0 when every row completed, 1 otherwise (the table is printed either way).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh

MESSAGES=${MESSAGES:-500000}
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1024}
CONNS=${CONNS:-50}
WINDOW=${WINDOW:-16}
DOMAINS=${DOMAINS:-100}
PER_DEST=${PER_DEST:-1}
PER_CONN=${PER_CONN:-10000}
TIMEOUT=${TIMEOUT:-300}
BUILD=${BUILD:-build}
FSYNC=${FSYNC:-true}
ROWS=${ROWS:-"opportunistic mta-sts dane"}
SUFFIX=tls.test
MX_HOSTS=10
POLICY_HOST=127.0.0.12
while [ $# -gt 0 ]; do
  case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --rounds) ROUNDS=${2:?}; shift 2 ;;
    --no-dane) ROWS="opportunistic mta-sts"; shift ;;
    --quick) MESSAGES=20000; ROUNDS=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "$me: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$MESSAGES" "$ROUNDS" "$DOMAINS" "$PER_DEST" "$PER_CONN"; do
  case $v in
    ''|*[!0-9]*|0) echo "$me: MESSAGES, ROUNDS, DOMAINS, PER_DEST and PER_CONN must be" \
      "positive numbers" >&2; exit 2 ;;
  esac
done
for row in $ROWS; do
  case $row in
    opportunistic|mta-sts|dane) ;;
    *) echo "$me: ROWS: '$row' is not one of opportunistic, mta-sts, dane" >&2; exit 2 ;;
  esac
done
for tool in unbound ldns-keygen ldns-signzone drill openssl python3; do
  command -v "$tool" >/dev/null || die "$tool is missing: run tools/install_deps.sh"
done
ensure_built salvod salvo-blast salvo-sink salvoctl

work=${WORK_DIR:-"$root/$BUILD/bench-tls-policy"}
rm -rf "$work"; mkdir -p "$work"
dns_pid=""
https_pid=""
cleanup() {
  stop_perf
  stop_all
  stop_pid "$https_pid" "policy server" 5
  stop_pid "$dns_pid" unbound 5
  [ -n "${KEEP:-}" ] || rm -rf "$work"
}
on_exit cleanup

results="$work/results"
: > "$results"

# ---- certificates: a test CA, the MX hosts' certificate, the policy hosts' -------------------
ca_key=$work/ca.key ca_cert=$work/ca.pem
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$ca_key" \
  -out "$ca_cert" -days 2 -subj "/CN=salvo bench CA" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  2> "$work/openssl.log" ||
  die "openssl could not make the test CA: $(tail -n 2 "$work/openssl.log")"
# A P-256 key and a certificate from the test CA for the names (DNS:...); the CN is the first.
issue() {  # base-path name...
  local base=$1 san
  shift
  san=$(IFS=,; echo "$*")
  printf '%s\n' "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$san" > "$base.ext"
  if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$base.key" \
      -out "$base.csr" -subj "/CN=${1#DNS:}" 2>> "$work/openssl.log" ||
    ! openssl x509 -req -in "$base.csr" -CA "$ca_cert" -CAkey "$ca_key" \
      -set_serial "$RANDOM$RANDOM" -days 2 -extfile "$base.ext" -out "$base.pem" \
      2>> "$work/openssl.log"; then
    die "openssl could not issue $base.pem: $(tail -n 2 "$work/openssl.log")"
  fi
}
mx_names=()
for k in $(seq 0 $((MX_HOSTS - 1))); do mx_names+=("DNS:mx$k.$SUFFIX"); done
issue "$work/mx" "${mx_names[@]}"
web_names=()
for i in $(seq 0 $((DOMAINS - 1))); do web_names+=("DNS:mta-sts.d$i.$SUFFIX"); done
issue "$work/web" "${web_names[@]}"
# DANE-EE (3), SPKI (1), SHA-256 (1) of the sinks' key.
tlsa=$(openssl x509 -in "$work/mx.pem" -pubkey -noout | openssl pkey -pubin -outform DER |
  openssl dgst -sha256 -binary | od -An -v -tx1 | tr -d ' \n')
[ ${#tlsa} = 64 ] || die "could not compute the TLSA digest of $work/mx.pem"

# ---- DNS: the signed zone and unbound --------------------------------------------------------
mkdir -p "$work/dns"
{
  echo "$SUFFIX. 3600 IN SOA ns.$SUFFIX. hostmaster.$SUFFIX. 1 3600 900 604800 60"
  echo "$SUFFIX. 3600 IN NS ns.$SUFFIX."
  echo "ns.$SUFFIX. 3600 IN A 127.0.0.1"
  for k in $(seq 0 $((MX_HOSTS - 1))); do
    echo "mx$k.$SUFFIX. 3600 IN A 127.0.0.$((2 + k))"
    echo "_25._tcp.mx$k.$SUFFIX. 3600 IN TLSA 3 1 1 $tlsa"
  done
  for i in $(seq 0 $((DOMAINS - 1))); do
    echo "d$i.$SUFFIX. 3600 IN MX 10 mx$((i % MX_HOSTS)).$SUFFIX."
    echo "_mta-sts.d$i.$SUFFIX. 3600 IN TXT \"v=STSv1; id=1;\""
    echo "mta-sts.d$i.$SUFFIX. 3600 IN A $POLICY_HOST"
  done
} > "$work/dns/zone"
key_base=$(cd "$work/dns" &&
  ldns-keygen -a ECDSAP256SHA256 -k "$SUFFIX" 2> "$work/dns/keygen.log") ||
  die "ldns-keygen failed: $(tail -n 2 "$work/dns/keygen.log")"
ldns-signzone -f "$work/dns/zone.signed" "$work/dns/zone" "$work/dns/$key_base" \
  2> "$work/dns/signzone.log" || die "ldns-signzone failed: $(tail -n 2 "$work/dns/signzone.log")"
dns_port=$(free_port)
cat > "$work/dns/unbound.conf" <<EOF
server:
  interface: 127.0.0.1@$dns_port
  port: $dns_port
  do-ip6: no
  do-udp: yes
  do-tcp: yes
  num-threads: 1
  so-reuseport: no
  do-daemonize: no
  chroot: ""
  username: ""
  directory: "$work/dns"
  pidfile: "$work/dns/unbound.pid"
  use-syslog: no
  logfile: ""
  verbosity: 1
  module-config: "validator iterator"
  access-control: 127.0.0.0/8 allow
  # Nothing leaves the host: other names are refused, no root priming.
  local-zone: "." refuse
  local-zone: "$SUFFIX." transparent
  trust-anchor-file: "$work/dns/$key_base.ds"
  do-not-query-localhost: yes
  harden-referral-path: no
  prefetch: no
auth-zone:
  name: "$SUFFIX."
  zonefile: "$work/dns/zone.signed"
  for-downstream: no
  for-upstream: yes
  fallback-enabled: no
remote-control:
  control-enable: no
EOF
unbound -d -c "$work/dns/unbound.conf" 2> "$work/dns/unbound.log" &
dns_pid=$!
# Ready when a validated (AD) answer for the first domain's MX comes back (-D: DO set).
dns_validates() {
  drill -D -p "$dns_port" @127.0.0.1 "d0.$SUFFIX" MX 2>/dev/null | grep -q 'flags:.* ad'
}
wait_until 20 0.1 dns_validates ||
  die "unbound gave no validated answer in 20 s: $(tail -n 3 "$work/dns/unbound.log" | tr '\n' ' ')"

# ---- the MTA-STS policy server ----------------------------------------------------------------
printf 'version: STSv1\nmode: enforce\nmx: *.%s\nmax_age: 86400\n' "$SUFFIX" > "$work/policy.txt"
policy_port=$(free_port)
python3 tests/integration/sts_policy_server.py --address "$POLICY_HOST" --port "$policy_port" \
  --cert "$work/web.pem" --key "$work/web.key" --policy "$work/policy.txt" \
  --log "$work/policy-gets.log" --ready "$work/https.ready" 2> "$work/https.log" &
https_pid=$!
wait_ready "$https_pid" "policy server" "$work/https.ready" "$work/https.log" 20 ||
  { https_pid=""; die_start; }

# ---- the MX hosts: one salvo-sink on 127.0.0.2 .. 127.0.0.11, with STARTTLS ------------------
start_mx_sinks "$work" "$MX_HOSTS" --tls-cert "$work/mx.pem" --tls-key "$work/mx.key"

# ---- salvod ----------------------------------------------------------------------------------
salvod_port=""
run_salvod() {  # row
  local -a policy=(--shaping 'tls = "opportunistic"')
  case $1 in
    opportunistic) policy+=(--shaping "mta_sts = false" --shaping "dane = false") ;;
    mta-sts) policy+=(--shaping "mta_sts = true" --shaping "dane = false") ;;
    dane) policy+=(--shaping "mta_sts = false" --shaping "dane = true" --dns "validating = true") ;;
  esac
  salvod_port=$(free_port)
  mkdir -p "$work/salvod"
  write_salvod_config "$work/salvod/salvo.toml" "$work/salvod" --fsync "$FSYNC" \
    --listen "$salvod_port" --resolver "127.0.0.1:$dns_port" --smtp-port "$sink_port" \
    --max-connections "$PER_DEST" --max-messages-per-connection "$PER_CONN" --dns 'timeout = "2s"' \
    --delivery "mta_sts_port = $policy_port" "${policy[@]}" \
    --table "$(printf '[tls]\nca_bundle = "%s"' "$ca_cert")"
  start_salvod "$work/salvod/salvo.toml"
}
# salvod's counters as "name{labels} value" lines (salvoctl status).
metrics() {  # file
  "$BUILD/salvoctl" --config "$work/salvod/salvo.toml" status --json > "$work/status.json" \
    2>/dev/null || return 1
  json_field "$work/status.json" \
    "'\n'.join(f'{k} {v:.0f}' for k, v in j['metrics'].items()
               if k.startswith(('salvo_mta_sts', 'salvo_delivery_tls_policy')))" \
    > "$1"
}
# The value of one counter in a metrics() file (0 when absent).
metric() {  # file name{labels}
  awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }' "$1"
}
# How much a counter grew during the timed run (between the snapshots m0 and m1).
timed() {  # name{labels}
  echo $(( $(metric "$work/m1" "$1") - $(metric "$work/m0" "$1") ))
}
sts_fetched() {  # every domain's policy fetched
  metrics "$work/m.warm" &&
    [ "$(metric "$work/m.warm" 'salvo_mta_sts_fetches_total{result="ok"}')" -ge "$DOMAINS" ]
}
blast() {  # messages
  timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$salvod_port" --size "$SIZE" \
    --messages "$1" --connections "$CONNS" --window "$WINDOW" --chunking --domains "$DOMAINS" \
    --domain-suffix "$SUFFIX" --timeout "${TIMEOUT}s" --json > "$work/blast.json" \
    2> "$work/blast.err" || return 1
  [ "$(json_field "$work/blast.json" "j['accepted']")" = "$1" ]
}
# The machine's CPU time so far: "busy idle" in clock ticks (/proc/stat; idle includes iowait).
cpu_times() {
  awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat
}
idle_percent() {  # "busy idle" before, after
  local -a a b
  read -r -a a <<< "$1"
  read -r -a b <<< "$2"
  calc "round(100 * ($((b[1] - a[1]))) / max(1, $((b[0] - a[0] + b[1] - a[1]))))"
}
# PERF=DIR: `perf record -g` of salvod during each timed run, into DIR/ROW.ROUND.data
# (perf takes CPU too: rates measured so are not comparable with a run without it).
perf_pid=""
start_perf() {  # key
  [ -n "${PERF:-}" ] || return 0
  mkdir -p "$PERF"
  perf record -q -g -p "$salvod_pid" -o "$PERF/$1.data" 2> "$PERF/$1.log" &
  perf_pid=$!
  sleep 0.3  # perf attached before the blast starts
}
stop_perf() {
  [ -n "$perf_pid" ] || return 0
  kill -INT "$perf_pid" 2>/dev/null || true
  wait_until 30 0.1 gone "$perf_pid" || kill -KILL "$perf_pid" 2>/dev/null || true
  wait "$perf_pid" 2>/dev/null || true
  perf_pid=""
}
blast_why() { tail -c 300 "$work/blast.json" "$work/blast.err" | tr '\n' ' '; }

policy_row() {  # row round
  local row=$1 key="$1.$2" base t0 d want outcome hits misses cpu0
  rm -rf "$work/salvod"
  if ! run_salvod "$row"; then fail_row "$key" "salvod did not start: $(start_why)"; return; fi
  # Warm-up: one message per domain.
  base=$(sink_messages)
  if ! blast "$DOMAINS"; then
    fail_row "$key" "warm-up: salvo-blast did not get $DOMAINS accepted: $(blast_why)"
    stop_salvod; return
  fi
  if ! wait_sink $((base + DOMAINS)) 60; then
    fail_row "$key" "warm-up: the sinks got $(( $(sink_messages) - base )) of $DOMAINS in 60 s"
    stop_salvod; return
  fi
  if [ "$row" = mta-sts ] && ! wait_until 30 0.1 sts_fetched; then
    fail_row "$key" "warm-up: not every domain's MTA-STS policy was fetched in 30 s"
    stop_salvod; return
  fi
  metrics "$work/m0" || : > "$work/m0"
  # The timed run.
  start_perf "$key"
  base=$(sink_messages)
  t0=$(now)
  cpu0=$(cpu_times)
  if ! blast "$MESSAGES"; then
    fail_row "$key" "salvo-blast did not get $MESSAGES accepted: $(blast_why)"
    stop_perf; stop_salvod; return
  fi
  if ! wait_sink $((base + MESSAGES)) "$TIMEOUT"; then
    fail_row "$key" \
      "timeout: the sinks got $(( $(sink_messages) - base )) of $MESSAGES in ${TIMEOUT}s"
    stop_perf; stop_salvod; return
  fi
  d=$(calc "$MESSAGES / ($reached_at - $t0)")
  stop_perf
  result "$key.idle" "$(idle_percent "$cpu0" "$(cpu_times)")"
  metrics "$work/m1" || : > "$work/m1"
  stop_salvod
  # Checks: every delivery under the row's policy, and no policy cache miss while timed.
  case $row in
    opportunistic) outcome=opportunistic ;;
    mta-sts) outcome=mta-sts ;;
    dane) outcome=dane ;;
  esac
  want=$((DOMAINS + MESSAGES))
  local lines
  lines=$(cat "$work"/salvod/log/accounting*.jsonl 2>/dev/null |
    grep '"type":"delivered"' | grep -c "\"tls_policy\":\"$outcome\"" || true)
  hits=$(timed 'salvo_mta_sts_lookups_total{result="hit"}')
  misses=$(timed 'salvo_mta_sts_lookups_total{result="miss"}')
  result "$key.sts_hits" "$hits"
  result "$key.sessions" "$(timed "salvo_delivery_tls_policy_total{outcome=\"$outcome\"}")"
  if [ "$lines" != "$want" ]; then
    fail_row "$key" "$lines of $want deliveries have tls_policy \"$outcome\" (measured $d msgs/s)"
  elif [ "$row" = mta-sts ] && [ "$misses" != 0 ]; then
    fail_row "$key" "$misses MTA-STS cache misses during the timed run (measured $d msgs/s)"
  elif [ "$row" = mta-sts ] && [ "$hits" -lt 1 ]; then
    fail_row "$key" "no MTA-STS cache hit counted during the timed run (measured $d msgs/s)"
  else
    result "$key" "$d"
  fi
}

# ---- runs ------------------------------------------------------------------------------------
echo "== tls_policy: $MESSAGES x $SIZE-byte messages per row, $ROUNDS rounds of: $ROWS;" \
  "$CONNS connections; $DOMAINS domains (MX through unbound) -> $MX_HOSTS salvo-sink MX hosts" \
  "with STARTTLS (127.0.0.2-11:$sink_port); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg)"
# Each round starts with the next row (a b c, b c a, c a b, ...): a drift of the machine
# over the run does not always fall on the same row.
read -r -a row_list <<< "$ROWS"
for round in $(seq 1 "$ROUNDS"); do
  for j in $(seq 0 $((${#row_list[@]} - 1))); do
    row=${row_list[(j + round - 1) % ${#row_list[@]}]}
    echo "-- round $round: $row"
    policy_row "$row" "$round"
  done
done
stop_sink
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
gets=$(wc -l < "$work/policy-gets.log" 2>/dev/null || echo 0)

# ---- report ----------------------------------------------------------------------------------
report "$results" "$ROUNDS" "$ROWS" "$MESSAGES" "$SIZE" "$CONNS" "$DOMAINS" "$gets" \
  "$load_after" "$PER_DEST" <<'EOF'
import results, statistics, sys
path, rounds, rows, n, size, conns, domains, gets, load, per_dest = sys.argv[1:11]
rounds, rows = int(rounds), rows.split()
r = results.read(path)
def num(k):
    return results.number(r, k)
print()
print(f"Outbound TLS policy cost: salvo-blast ({conns} connections, BDAT) -> salvod (fsync on, "
      f"max_connections {per_dest} per domain) -> salvo-sink x10 MX hosts, STARTTLS; "
      f"{int(n):,} x {size} B per row, {domains} domains")
print()
w = 12
heads = [f"round {i}" for i in range(1, rounds + 1)] + ["median", "/ opport."]
print(f"{'delivered msgs/s':<18}" + "".join(f"{h:>{w}}" for h in heads))
med = {}
for row in rows:
    vals = [num(f"{row}.{i}") for i in range(1, rounds + 1)]
    ok = [v for v in vals if v is not None]
    med[row] = statistics.median(ok) if len(ok) == rounds else None
    cells = ["n/a" if v is None else f"{v:,.0f}" for v in vals]
    m = "n/a" if med[row] is None else f"{med[row]:,.0f}"
    base = med.get("opportunistic")
    ratio = "n/a" if med[row] is None or not base else f"{med[row] / base:.3f}"
    print(f"{row:<18}" + "".join(f"{c:>{w}}" for c in cells) + f"{m:>{w}}" + f"{ratio:>{w}}")
    for name, what in (("  TLS sessions", "sessions"), ("  CPU idle %", "idle")):
        cells = [r.get(f"{row}.{i}.{what}", "n/a") for i in range(1, rounds + 1)]
        print(f"{name:<18}" + "".join(f"{c:>{w}}" for c in cells))
    if row != "opportunistic":  # the same round's rows side by side: the run's spread
        pairs = [(num(f"{row}.{i}"), num(f"opportunistic.{i}")) for i in range(1, rounds + 1)]
        cells = ["n/a" if a is None or not b else f"{a / b:.3f}" for a, b in pairs]
        print(f"{'  round ratio':<18}" + "".join(f"{c:>{w}}" for c in cells))
print()
print("Target: mta-sts / opportunistic >= 0.98 (cached policies); the same for dane")
for row in rows[1:]:
    a, b = med.get(row), med.get("opportunistic")
    verdict = "n/a" if a is None or not b else ("met" if a / b >= 0.98 else "NOT met")
    print(f"  {row}: {verdict}")
hits = [r.get(f"mta-sts.{i}.sts_hits") for i in range(1, rounds + 1)]
print(f"MTA-STS policy fetches (HTTPS GETs, all rows): {gets}; cache hits per timed mta-sts row: "
      f"{', '.join(h or 'n/a' for h in hits)} (misses: 0 or the row failed)")
print("TLS sessions: salvod's sessions opened during the timed run (each a handshake, verified "
      "in the mta-sts row, matched in the dane row); CPU idle: the whole machine's, timed run; "
      "round ratio: the row / opportunistic in the same round (their spread is the run's noise)")
print(f"load average at the end: {load}")
notes = [f"  {k[:-4]}: {v}" for k, v in r.items() if k.endswith(".why")]
if notes:
    print()
    print("Notes:")
    print("\n".join(notes))
EOF
[ "$failures" = 0 ]
