#!/usr/bin/env bash
# Ingest benchmark: how fast mail gets *durably* into the queue, in one run on one
# machine, against a tuned Postfix doing the same work.
#   SMTP  salvo-blast (50 connections, pipelined, 1 KiB and 10 KiB; DATA with the next
#         transaction behind each end of data, then BDAT with 16 messages in flight) into
#           salvod fsync on | salvod fsync off | Postfix smtpd that only queues (held)
#   pick  one .json job of JOB recipients (default 100,000) into salvod's pickup directory,
#         EML .eml files (default 10,000) into salvod's pickup directory,
#         the same EML messages through Postfix's sendmail (maildrop -> pickup -> cleanup)
# Prints msgs/s, the ratios the issue sets targets for, p99 end-of-data -> 250, salvod's
# messages per fsync and its fdatasync latency distribution, and salvod's peak RSS around
# the big job (streaming: it must not grow with the job). All work files live under
# build/bench-ingest (the real disk, as the spool would), removed at the end.
# Usage: bench/load/ingest.sh [--quick]    (--quick: 10,000 SMTP messages, 20,000-recipient
#        job, 2,000 .eml, 2,000 Postfix messages)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
. bench/load/lib.sh
MESSAGES=${MESSAGES:-50000}        # per salvod SMTP row
PFX_MESSAGES=${PFX_MESSAGES:-5000} # per Postfix SMTP row (it is ~50x slower)
JOB=${JOB:-100000}
EML=${EML:-10000}
PFX_EML=${PFX_EML:-$EML}
CONNS=${CONNS:-50}
WINDOW=${WINDOW:-16}  # BDAT rows: messages in flight per connection (salvod allows 32)
if [ "${1:-}" = "--quick" ]; then MESSAGES=10000; PFX_MESSAGES=2000; JOB=20000; EML=2000; PFX_EML=2000; fi
BUILD=${BUILD:-build}
TIMEOUT=${TIMEOUT:-600}

ensure_built salvod salvo-blast
ensure_postfix

work="$root/$BUILD/bench-ingest"
rm -rf "$work"; mkdir -p "$work"
cleanup() { stop_all; rm -rf "$work"; }
on_exit cleanup

field() { python3 -c "import json,sys; j=json.load(open('$1')); print($2)"; }

# ---- salvod ---------------------------------------------------------------------------
run_salvod() {  # fsync(true|false) -> sets salvod_pid, salvod_port
  rm -rf "$work/salvod"; mkdir -p "$work/salvod"
  salvod_port=$(free_port)
  # Held, as Postfix's queue is: this measures intake, and a delivery attempt would look up
  # the blast's domains with the machine's resolver (traffic off the box, and bounces with
  # their DSNs competing with intake).
  write_salvod_config "$work/salvod/salvo.toml" "$work/salvod" --fsync "$1" --pickup \
    --listen "$salvod_port" --hold
  start_salvod "$work/salvod/salvo.toml" --log-level info || die_start
}
end_salvod() {  # -> the "spool stopped" line in $work/salvod/spool.line
  stop_salvod
  grep -h "spool stopped" "$work/salvod/salvod.log" > "$work/salvod/spool.line" || true
}
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$salvod_pid/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$salvod_pid/status"; }

blast_into() {  # port size messages [extra blast flags] -> json file
  timeout "$TIMEOUT" "$BUILD/salvo-blast" --smtp "127.0.0.1:$1" --size "$2" \
    --connections "$CONNS" --messages "$3" --domains 100 --json ${4:-} > "$work/blast.json"
  python3 - "$work/blast.json" "$3" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
assert j["accepted"] == int(sys.argv[2]), j
EOF
}

declare -A rate p99
smtp_row() {  # label fsync size [blast flags]
  local label=$1 fsync=$2 size=$3 flags=${4:-}
  run_salvod "$fsync"
  blast_into "$salvod_port" "$size" "$MESSAGES" "$flags"
  rate[$label]=$(field "$work/blast.json" "j['msgs_per_s']")
  p99[$label]=$(field "$work/blast.json" "j['latency_ms']['p99']")
  end_salvod
  if [ "$fsync" = true ]; then cp "$work/salvod/spool.line" "$work/spool-$label.line"; fi
}

# ---- Postfix, queue only ---------------------------------------------------------------
# Queue only: every message is held in the hold queue, nothing is delivered. Tuning for
# acceptance speed: enough smtpd processes.
run_postfix() {
  mkdir -p "$work/postfix"
  echo '/^Subject:/ HOLD' > "$work/postfix/hold"
  start_postfix "$work/postfix" "myhostname = bench.test
header_checks = regexp:$work/postfix/hold
default_process_limit = 200" || exit 1
}
held() { find "$work/postfix/queue/hold" -type f 2>/dev/null | wc -l; }
held_at_least() { [ "$(held)" -ge "$1" ]; }
wait_held() {  # count
  wait_until 300 0.1 held_at_least "$1" && return 0
  echo "ingest.sh: postfix held $(held) of $1" >&2; return 1
}

# ---- runs ------------------------------------------------------------------------------
echo "== SMTP acceptance: $CONNS connections, pipelined, $MESSAGES messages (Postfix: $PFX_MESSAGES)"
for size in 1024 10240; do
  smtp_row "on-$size" true "$size"
  smtp_row "off-$size" false "$size"
  smtp_row "on-bdat-$size" true "$size" "--chunking --window $WINDOW"
  smtp_row "off-bdat-$size" false "$size" "--chunking --window $WINDOW"
done
run_postfix
for size in 1024 10240; do
  for mode in "" bdat; do
    base=$(held)
    blast_into "$pfx_port" "$size" "$PFX_MESSAGES" "${mode:+--chunking --window $WINDOW}"
    wait_held $((base + PFX_MESSAGES))
    rate[pfx${mode:+-$mode}-$size]=$(field "$work/blast.json" "j['msgs_per_s']")
    p99[pfx${mode:+-$mode}-$size]=$(field "$work/blast.json" "j['latency_ms']['p99']")
  done
done

echo "== pickup: one .json job of $JOB recipients, $EML .eml files; Postfix sendmail: $PFX_EML"
mkdir -p "$work/stage-json" "$work/stage-eml"
"$BUILD/salvo-blast" --pickup "$work/stage-json" --format json --job-size "$JOB" \
  --messages "$JOB" --domains 1000 >/dev/null
"$BUILD/salvo-blast" --pickup "$work/stage-eml" --format eml --messages "$EML" \
  --domains 100 --size 1024 >/dev/null
run_salvod true
# Moves every staged file into the pickup directory and waits until salvod took them all
# (queued, fdatasync'ed, unlinked: gone from pickup/ and from the shards' claims in
# pickup/.work/). Prints seconds.
take() {  # stage-dir
  python3 - "$1" "$work/salvod/pickup" <<'EOF'
import os, sys, time
src, dst = sys.argv[1], sys.argv[2]
names = [n for n in os.listdir(src) if n.endswith((".eml", ".json"))]
t0 = time.monotonic()
for n in names:
    os.rename(os.path.join(src, n), os.path.join(dst, n))
deadline = t0 + 600
def waiting():
    if any(n.endswith((".eml", ".json")) for n in os.listdir(dst)):
        return True
    work = os.path.join(dst, ".work")
    return os.path.isdir(work) and any(os.listdir(os.path.join(work, s)) for s in os.listdir(work))
while waiting():
    if time.monotonic() > deadline:
        sys.exit("pickup did not finish")
    time.sleep(0.005)
print(f"{time.monotonic() - t0:.3f}")
EOF
}
rss_before=$(rss_kib)
t_json=$(take "$work/stage-json")
rss_after=$(rss_kib); hwm_json=$(hwm_kib)
t_eml=$(take "$work/stage-eml")
end_salvod
failed=$(find "$work/salvod/pickup/failed" -type f | wc -l)
[ "$failed" = 0 ] || { echo "ingest.sh: $failed pickup files failed" >&2; exit 1; }

# Postfix: the same .eml messages, one sendmail per message (envelope from X- lines).
"$BUILD/salvo-blast" --pickup "$work/stage-pfx" --format eml --messages "$PFX_EML" \
  --domains 100 --size 1024 >/dev/null
base=$(held)
t_pfx=$(python3 - "$work/stage-pfx" "$pfx_conf" <<'EOF'
import os, subprocess, sys, time
src, conf = sys.argv[1], sys.argv[2]
names = sorted(n for n in os.listdir(src) if n.endswith(".eml"))
t0 = time.monotonic()
for n in names:
    data = open(os.path.join(src, n), "rb").read()
    lines = data.split(b"\n")
    sender, rcpts, i = None, [], 0
    while i < len(lines) and lines[i].lower().startswith((b"x-sender:", b"x-receiver:")):
        k, v = lines[i].split(b":", 1)
        v = v.strip().decode()
        if k.lower() == b"x-sender": sender = v
        else: rcpts.append(v)
        i += 1
    body = b"\n".join(lines[i:])
    subprocess.run(["/usr/sbin/sendmail", "-C", conf, "-f", sender, "--"] + rcpts,
                   input=body, check=True)
print(f"{time.monotonic() - t0:.3f}")
EOF
)
wait_held $((base + PFX_EML))
stop_postfix

# ---- report ----------------------------------------------------------------------------
python3 - "$work" <<EOF
import re
rate = {$(for k in "${!rate[@]}"; do printf '"%s": %s, ' "$k" "${rate[$k]}"; done)}
p99 = {$(for k in "${!p99[@]}"; do printf '"%s": %s, ' "$k" "${p99[$k]}"; done)}
print()
print("SMTP acceptance (msgs/s; p99 end-of-data->250 in ms)")
print(f"{'body':>11} | {'salvod fsync':>14} {'p99':>6} | {'salvod nofsync':>14} {'p99':>6} | {'Postfix queue':>13} {'p99':>6} | {'on/Postfix':>10} {'on/off':>6}")
for mode in ("", "bdat-"):
    for size in (1024, 10240):
        k = f"{mode}{size}"
        on, off, pfx = rate[f"on-{k}"], rate[f"off-{k}"], rate[f"pfx-{k}"]
        label = f"{size//1024}Ki {'BDAT' if mode else 'DATA'}"
        print(f"{label:>11} | {on:>14,.0f} {p99[f'on-{k}']:>6.2f} | {off:>14,.0f} {p99[f'off-{k}']:>6.2f} | {pfx:>13,.0f} {p99[f'pfx-{k}']:>6.2f} | {on/pfx:>9.1f}x {on/off:>6.2f}")
job, eml, pfx_eml = $JOB, $EML, $PFX_EML
t_json, t_eml, t_pfx = $t_json, $t_eml, $t_pfx
print()
print("Pickup (files renamed into pickup/ until salvod has queued, fsynced and removed them)")
print(f"  .json job, {job:,} recipients: {t_json:.3f} s = {job/t_json:,.0f} recipients/s")
print(f"  {eml:,} .eml files:             {t_eml:.3f} s = {eml/t_eml:,.0f} msgs/s")
print(f"  Postfix sendmail, {pfx_eml:,} msgs: {t_pfx:.3f} s = {pfx_eml/t_pfx:,.0f} msgs/s")
print(f"  .eml salvod / Postfix sendmail: {(eml/t_eml)/(pfx_eml/t_pfx):.1f}x")
print(f"  salvod RSS around the job: {$rss_before/1024:.1f} MiB before, {$rss_after/1024:.1f} MiB after, peak {$hwm_json/1024:.1f} MiB")
print()
print("salvod group commit (fsync on rows; from its 'spool stopped' line)")
for label in ("1024", "10240", "bdat-1024", "bdat-10240"):
    line = open(f"$work/spool-on-{label}.line").read()
    kv = dict(re.findall(r"(\w+)=([0-9.]+)", line))
    print(f"  {label:>10}: {kv['commits']} commits for {kv['messages']} messages = "
          f"{float(kv['messages'])/max(1,float(kv['commits'])):.1f} msgs/fsync "
          f"(p50 {kv['msgs_per_commit_p50']}, p99 {kv['msgs_per_commit_p99']}, max {kv['msgs_per_commit_max']})")
    print(f"          fdatasync us: mean {kv['fsync_us_mean']} p50 {kv['fsync_us_p50']} p90 {kv['fsync_us_p90']} "
          f"p99 {kv['fsync_us_p99']} p99.9 {kv['fsync_us_p999']} max {kv['fsync_us_max']}")
EOF
