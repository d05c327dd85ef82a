#!/usr/bin/env bash
# A realistic day in one run: what an ESP sends (30 KiB bodies, RSA-2048 DKIM), to MX hosts
# that misbehave the way real ones do, with fsync on; salvod against a private Postfix that
# signs with Debian's OpenDKIM as a milter, on the same work to the same sinks.
#
#   sinks   one salvo-sink, ten MX hosts 127.0.0.2 .. 127.0.0.11 on one port:
#             .2-.9   5% of RCPTs 451 4.3.0, 2% 550 5.1.1
#             .10     the same, and 200 ms before each batch of replies (a slow MX)
#             .11     421 4.7.0 after 50 messages on a connection (a throttling domain)
#           100 domains: dI.real.test -> 127.0.0.(2 + I % 9) for I < 99, d99 -> .11
#   salvod  salvo-blast (CONNS connections, BDAT, WINDOW in flight each; or, with --job, one
#           .json pickup job) -> salvod (fsync on, [routes] for the 100 domains, [[dkim]]
#           RSA-2048 for the sender's domain, retries 30 minutes away) -> sinks
#   Postfix the same salvo-blast -> Postfix (same routes; smtpd_milters = OpenDKIM, signing
#           rsa-sha256 relaxed/relaxed with a key of the same size; no retry within the run)
#           -> the same sinks
# Prints, for each MTA, first-attempt throughput: recipients with a first-attempt outcome
# (delivered, deferred or bounced — from salvod's accounting log, Postfix's maillog) per
# second, counted from the start of the injection until 99% of the recipients have one, so
# retry schedules do not decide it; the ratio; salvod unsigned on the same work, and the
# signed run's fraction of the crypto-bound limit cores / (cores / unsigned + 1 / s), s the
# fastest single-core RSA-2048 sign rate measured in the run (openssl speed or bench_dkim);
# and salvod's p99 end of data -> 250 (its own histogram).
# Usage: bench/load/real.sh [--messages N] [--pfx-messages N] [--size BYTES] [--job] [--quick]
#   --quick: 4,000 messages (Postfix: 1,000).  --job: salvod's mail arrives as one .json
#   pickup job (Postfix's still over SMTP).  Defaults: 20,000 (Postfix: 3,000), 30 KiB.
# Environment: BUILD (build), CONNS (50), WINDOW (16), TIMEOUT (900).
# Exit: 0 when every measurement completed, 1 otherwise (the table is printed either way).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh

MESSAGES=${MESSAGES:-20000}
PFX_MESSAGES=${PFX_MESSAGES:-3000}
SIZE=${SIZE:-30720}
CONNS=${CONNS:-50}
WINDOW=${WINDOW:-16}
TIMEOUT=${TIMEOUT:-900}
BUILD=${BUILD:-build}
JOB=0
SUFFIX=real.test
DOMAINS=100
while [ $# -gt 0 ]; do
  case $1 in
    --messages) MESSAGES=${2:?}; shift 2 ;;
    --pfx-messages) PFX_MESSAGES=${2:?}; shift 2 ;;
    --size) SIZE=${2:?}; shift 2 ;;
    --job) JOB=1; shift ;;
    --quick) MESSAGES=4000; PFX_MESSAGES=1000; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "real.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for v in "$MESSAGES" "$PFX_MESSAGES" "$SIZE"; do
  case $v in ''|*[!0-9]*|0) echo "real.sh: counts and sizes must be positive numbers" >&2; exit 2 ;; esac
done

ensure_built salvod salvo-blast salvo-sink salvoctl
ensure_postfix
if ! command -v opendkim >/dev/null; then
  echo "$me: installing opendkim (the baseline's signer)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends opendkim >/dev/null
fi
systemctl stop opendkim 2>/dev/null || true

work="$root/$BUILD/bench-real"
rm -rf "$work"; mkdir -p "$work"
results="$work/results"; : > "$results"
failures=0
odkim_pid=""
cleanup() { stop_pid "$odkim_pid" opendkim 10; stop_all; rm -rf "$work"; }
on_exit cleanup
result() { echo "$1=$2" >> "$results"; }
fail_row() { echo "$1.why=$2" >> "$results"; failures=$((failures + 1)); }
now() { date +%s.%N; }
calc() { python3 -c "print($1)"; }

# ---- the sinks and the routes ---------------------------------------------------------------
sink_port=$(free_port)
faults="defer-rate=0.05,defer-status=4.3.0,reject-rate=0.02"
listen=()
for h in 2 3 4 5 6 7 8 9; do listen+=(--listen "127.0.0.$h:$sink_port,$faults"); done
listen+=(--listen "127.0.0.10:$sink_port,latency=200ms,$faults")
listen+=(--listen "127.0.0.11:$sink_port,421-after=50")
start_sink "$work" "${listen[@]}" --progress-file "$work/progress.json" || die_start
mx_of() { if [ "$1" -lt 99 ]; then echo "127.0.0.$((2 + $1 % 9))"; else echo 127.0.0.11; fi; }
route_args=()
for i in $(seq 0 $((DOMAINS - 1))); do route_args+=(--route "d$i.$SUFFIX" "$(mx_of "$i"):$sink_port"); done

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/dkim.pem" 2>/dev/null
chmod 600 "$work/dkim.pem"
speed=$(sign_rate rsa)
result sign_rate "$speed"

# ---- salvod --------------------------------------------------------------------------------
# First-attempt outcomes in salvod's accounting log.
salvod_first() {
  cat "$work"/salvod/log/accounting*.jsonl 2>/dev/null |
    grep -E '"type":"(delivered|deferred|bounced)"' | grep -c '"attempt":1[,}]' || true
}
# Waits (bounded) until count() reaches want; sets reached_at.
wait_count() {  # want seconds function
  local want=$1 seconds=$2 fn=$3 start
  start=$(now)
  while :; do
    if [ "$($fn)" -ge "$want" ]; then reached_at=$(now); return 0; fi
    [ "$(calc "$(now) - $start > $seconds")" = False ] || return 1
    sleep 0.1
  done
}

salvod_run() {  # key (signed | unsigned)
  local key=$1 port t0 want
  local -a sign=()
  [ "$key" = signed ] && sign=(--dkim sender.example s1 "$work/dkim.pem" rsa-sha256)
  rm -rf "$work/salvod"; mkdir -p "$work/salvod"
  port=$(free_port)
  write_salvod_config "$work/salvod/salvo.toml" "$work/salvod" --listen "$port" --pickup \
    --resolver 127.0.0.1:53 --smtp-port "$sink_port" --retry 30m --max-connections 20 \
    --max-messages-per-connection 1000 "${route_args[@]}" "${sign[@]}"
  if ! start_salvod "$work/salvod/salvo.toml"; then
    fail_row "$key" "salvod did not start: $(start_why)"; return
  fi
  want=$(( MESSAGES * 99 / 100 ))
  t0=$(now)
  if [ "$JOB" = 1 ]; then
    if ! timeout "$TIMEOUT" "$BUILD/salvo-blast" --pickup "$work/salvod/pickup" --format json \
        --job-size "$MESSAGES" --messages "$MESSAGES" --size "$SIZE" --domains "$DOMAINS" \
        --domain-suffix "$SUFFIX" --from blast@sender.example > "$work/blast.out" 2>&1; then
      fail_row "$key" "salvo-blast could not write the job: $(tail -c 300 "$work/blast.out")"
      stop_salvod; return
    fi
  elif ! timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$port" --size "$SIZE" \
      --messages "$MESSAGES" --connections "$CONNS" --window "$WINDOW" --chunking --unique \
      --domains "$DOMAINS" --domain-suffix "$SUFFIX" --from blast@sender.example \
      --timeout "${TIMEOUT}s" --json > "$work/blast.json" 2> "$work/blast.err"; then
    fail_row "$key" "salvo-blast failed: $(tail -c 300 "$work/blast.err")"
    stop_salvod; return
  else
    result "${key}_accept" "$(python3 -c "import json; print(json.load(open('$work/blast.json'))['msgs_per_s'])")"
  fi
  if wait_count "$want" "$TIMEOUT" salvod_first; then
    result "$key" "$(calc "$want / ($reached_at - $t0)")"
  else
    fail_row "$key" "timeout: $(salvod_first) of $want first attempts in ${TIMEOUT}s"
  fi
  "$BUILD/salvoctl" --config "$work/salvod/salvo.toml" status --json > "$work/status.json" 2>/dev/null || true
  python3 - "$work/status.json" "$key" >> "$results" <<'EOF' || true
import json, sys
m = json.load(open(sys.argv[1]))["metrics"]
key = sys.argv[2]
h = m.get("salvo_smtp_end_of_data_reply_seconds", {})
if h.get("count"):
    print(f"{key}_eod_p99_ms={h['p99_seconds'] * 1000}")
signed = sum(v for k, v in m.items() if k.startswith("salvo_dkim_signatures_total"))
print(f"{key}_signatures={signed}")
EOF
  stop_salvod
}

# ---- Postfix + OpenDKIM ------------------------------------------------------------------------
pfx_first() {
  grep -oE ' [0-9A-F]{6,}: to=<[^>]*>.* status=(sent|deferred|bounced)' "$work/postfix/maillog" \
    2>/dev/null | awk '{print $1, $2}' | sort -u | wc -l
}
listening_on() { python3 -c "import socket; s=socket.socket(); s.settimeout(0.2); s.connect(('$1',$2))" 2>/dev/null; }
has_mail() { [ -n "$(ls -A "$1/new" 2>/dev/null)" ]; }
pfx_run() {
  local od_port t0 want
  mkdir -p "$work/postfix" "$work/opendkim"
  od_port=$(free_port)
  cat > "$work/opendkim/opendkim.conf" <<EOF
Syslog no
Mode s
Domain sender.example
Selector s1
KeyFile $work/dkim.pem
Socket inet:$od_port@127.0.0.1
Canonicalization relaxed/relaxed
SignatureAlgorithm rsa-sha256
RequireSafeKeys false
UMask 002
EOF
  opendkim -f -x "$work/opendkim/opendkim.conf" > "$work/opendkim/log" 2>&1 &
  odkim_pid=$!
  if ! wait_port "$od_port"; then
    fail_row pfx "opendkim did not listen: $(tail -n 3 "$work/opendkim/log" | tr '\n' ' ')"
    stop_pid "$odkim_pid" opendkim 10; odkim_pid=""; return
  fi
  local i
  for i in $(seq 0 $((DOMAINS - 1))); do
    echo "d$i.$SUFFIX smtp:[$(mx_of "$i")]:$sink_port"
  done > "$work/postfix/transport"
  # Tuned as in e2e.sh; every message goes through the milter (tempfail if it is down, so
  # nothing leaves unsigned); deferred mail is retried only after the run.
  if ! start_postfix "$work/postfix" "myhostname = pfx.bench.test
transport_maps = texthash:$work/postfix/transport
smtp_dns_support_level = disabled
smtp_tls_security_level = none
default_process_limit = 250
initial_destination_concurrency = 20
default_destination_concurrency_limit = 20
smtp_connection_cache_on_demand = yes
smtp_connection_reuse_count_limit = 1000
qmgr_message_active_limit = 50000
minimal_backoff_time = 30m
maximal_backoff_time = 60m
queue_run_delay = 30m
smtpd_milters = inet:127.0.0.1:$od_port
non_smtpd_milters = inet:127.0.0.1:$od_port
milter_default_action = tempfail
milter_protocol = 6"; then
    fail_row pfx "Postfix did not start"; return
  fi
  want=$(( PFX_MESSAGES * 99 / 100 ))
  t0=$(now)
  if ! timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$pfx_port" --size "$SIZE" \
      --messages "$PFX_MESSAGES" --connections "$CONNS" --window "$WINDOW" --chunking --unique \
      --domains "$DOMAINS" --domain-suffix "$SUFFIX" --from blast@sender.example \
      --timeout "${TIMEOUT}s" --json > "$work/blast.json" 2> "$work/blast.err"; then
    fail_row pfx "salvo-blast failed against Postfix: $(tail -c 300 "$work/blast.err")"
  else
    result pfx_accept "$(python3 -c "import json; print(json.load(open('$work/blast.json'))['msgs_per_s'])")"
    if wait_count "$want" "$TIMEOUT" pfx_first; then
      result pfx "$(calc "$want / ($reached_at - $t0)")"
    else
      fail_row pfx "timeout: $(pfx_first) of $want first attempts in ${TIMEOUT}s"
    fi
  fi
  # Proof that OpenDKIM signed: one more message, to a sink that keeps it.
  local check_port check_pid
  check_port=$(free_port)
  "$BUILD/salvo-sink" --listen "127.0.0.12:$check_port" --maildir "$work/check-mail" \
    > /dev/null 2>&1 &
  check_pid=$!
  if wait_until 20 0.05 listening_on 127.0.0.12 "$check_port"; then
    echo "d0.check.$SUFFIX smtp:[127.0.0.12]:$check_port" >> "$work/postfix/transport"
    postfix -c "$pfx_conf" reload >/dev/null 2>&1 || true
    sleep 1
    timeout 60 "$BUILD/salvo-blast" --smtp "127.0.0.1:$pfx_port" --size 1024 --messages 1 \
      --domains 1 --domain-suffix "check.$SUFFIX" --from blast@sender.example > /dev/null 2>&1 || true
    wait_until 30 0.1 has_mail "$work/check-mail" || true
    result pfx_signed "$(cat "$work"/check-mail/new/* 2>/dev/null | grep -c '^DKIM-Signature: .*d=sender.example' || true)"
  fi
  stop_pid "$check_pid" check-sink 10
  stop_postfix
  stop_pid "$odkim_pid" opendkim 10; odkim_pid=""
}

intake="SMTP (salvo-blast, $CONNS connections, BDAT window $WINDOW)"
[ "$JOB" = 1 ] && intake="one .json pickup job"
echo "== real: $MESSAGES messages for salvod (Postfix: $PFX_MESSAGES), $SIZE-byte bodies, RSA-2048 DKIM, fsync on; salvod intake: $intake"
echo "-- salvod, unsigned"; salvod_run unsigned
echo "-- salvod, signed";   salvod_run signed
echo "-- Postfix + OpenDKIM"; pfx_run
stop_sink

python3 - "$results" "$(nproc)" "$MESSAGES" "$PFX_MESSAGES" "$SIZE" <<'EOF'
import sys
path, cores, n, pn, size = sys.argv[1:6]
cores = int(cores)
r = dict(line.rstrip("\n").split("=", 1) for line in open(path) if "=" in line)
num = lambda k: float(r[k]) if k in r and r[k] not in ("", "None") else None
fmt = lambda v, d=0: "n/a" if v is None else f"{v:,.{d}f}"
print()
print(f"First-attempt throughput (recipients/s with a first-attempt outcome, to 99%), "
      f"{int(size) // 1024} KiB bodies, {cores} cores")
rows = [("salvod, unsigned", "unsigned"), ("salvod, RSA-2048 signed", "signed"),
        ("Postfix + OpenDKIM", "pfx")]
for name, k in rows:
    acc = num(f"{k}_accept")
    print(f"  {name:<28}{fmt(num(k)):>10}   accepted {fmt(acc)} msgs/s")
s, u, p = num("signed"), num("unsigned"), num("pfx")
print(f"  {'salvod signed / Postfix':<28}{'n/a' if s is None or not p else f'{s / p:.1f}x':>10}")
rate = num("sign_rate")
limit = None if u is None or not rate else cores / (cores / u + 1 / rate)
print(f"  {'crypto-bound limit':<28}{fmt(limit):>10}   (s = {fmt(rate)} RSA-2048 signatures/s on one core)")
print(f"  {'signed / limit':<28}{'n/a' if s is None or limit is None else f'{100 * s / limit:.0f}%':>10}")
for k in ("unsigned", "signed"):
    v = num(f"{k}_eod_p99_ms")
    if v is not None:
        print(f"  salvod {k}: p99 end of data -> 250: {v:.1f} ms")
notes = []
sig = num("signed_signatures")
if s is not None and (sig is None or sig < int(n) * 0.99):
    notes.append(f"  salvod signed run: only {sig} DKIM signatures counted")
ps = num("pfx_signed")
if p is not None and not ps:
    notes.append("  the check message through Postfix arrived without OpenDKIM's signature")
notes += [f"  {k[:-4]}: {v}" for k, v in r.items() if k.endswith(".why")]
if notes:
    print("Notes:")
    print("\n".join(notes))
EOF
[ "$failures" = 0 ]
