#!/usr/bin/env bash
# The README's demo command: on a Debian 12 machine, installs what is missing,
# builds (Release) into build/, and then, in a scratch directory, runs salvod between one
# bulk job and five local salvo-sink MX hosts:
#   sinks   127.0.0.2..6:2525, one salvo-sink process; 127.0.0.5 defers every ~3rd RCPT
#           (451 4.3.0, delivered on retry), 127.0.0.6 rejects every 5th (550 5.1.1, bounced)
#   salvod  configs/demo.toml (static routes for 40 demo domains, no DNS, fsync on)
#   batch   one .json job of N recipients (default 5000) over the 40 domains, dropped into
#           the pickup directory (written under pickup/tmp/, then renamed in)
# It shows a live progress line from salvod's accounting log until every recipient has a
# final outcome (delivered, bounced or expired) or the timeout passes, prints a summary,
# and stops everything it started (always: a trap on EXIT, INT and TERM).
# Usage: tools/demo.sh [--recipients N] [--timeout SECONDS] [--keep] [--no-build]
#   --keep: leave the scratch directory (spool, logs, sink reports) for a look afterwards.
#   --no-build: skip the install and build steps; use the programs already in $BUILD/.
# Environment: BUILD (default build) is the build directory.
# Exit: 0 when every recipient has a final outcome; 1 on timeout or failure; 2 bad usage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
. bench/load/lib.sh

recipients=5000
timeout_s=120
keep=0
build=1
usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --recipients) recipients=${2:?--recipients needs a number}; shift 2 ;;
    --timeout) timeout_s=${2:?--timeout needs seconds}; shift 2 ;;
    --keep) keep=1; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "demo.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case $recipients in ''|*[!0-9]*|0) echo "demo.sh: --recipients must be a positive number" >&2; exit 2 ;; esac
case $timeout_s in ''|*[!0-9]*|0) echo "demo.sh: --timeout must be a positive number of seconds" >&2; exit 2 ;; esac
BUILD=${BUILD:-build}

say() { printf '== %s\n' "$*"; }

# ---- install and build ------------------------------------------------------------------
if [ "$build" = 1 ]; then
  say "dependencies (tools/install_deps.sh: installs only what is missing), then the build:" \
    "Release into $BUILD/ (salvod, salvo-sink)"
  build_release salvod salvo-sink
fi
for prog in salvod salvo-sink; do
  [ -x "$BUILD/$prog" ] || die "$BUILD/$prog is missing (run without --no-build)"
done

# ---- scratch directory and cleanup ------------------------------------------------------
work=$(mktemp -d /tmp/salvo-demo.XXXXXX)
monitor_pid=""
cleanup() {
  if [ -n "$monitor_pid" ]; then
    kill "$monitor_pid" 2>/dev/null || true
    wait "$monitor_pid" 2>/dev/null || true
    printf '\n'
  fi
  stop_all
  if [ "$keep" = 1 ]; then
    echo "demo.sh: scratch directory kept: $work" >&2
  else
    rm -rf "$work"
  fi
}
on_exit cleanup

# ---- sinks: the MX hosts ------------------------------------------------------------------
sinks=(127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5 127.0.0.6)
for a in "${sinks[@]}" 127.0.0.1; do
  port=2525
  [ "$a" = 127.0.0.1 ] && port=2526
  if ! port_free "$port" "$a"; then
    die "$a:$port is already in use (another demo or mail server?); the demo needs 127.0.0.2-6:2525, 127.0.0.1:2526 and 127.0.0.1:2580"
  fi
done
if ! port_free 2580 127.0.0.1; then
  die "127.0.0.1:2580 is already in use (another demo?); the demo's dashboard needs it"
fi
say "sinks: salvo-sink on ${sinks[*]} port 2525 (.5 defers 30%, .6 rejects 20%)"
start_sink "$work" --cores 1 --pin off \
  --listen 127.0.0.2:2525 --listen 127.0.0.3:2525 --listen '127.0.0.4:2525,latency=5ms' \
  --listen '127.0.0.5:2525,defer-rate=0.3,defer-status=4.3.0' \
  --listen '127.0.0.6:2525,reject-rate=0.2' \
  --progress-file "$work/sink.progress" || die_start

# ---- salvod ---------------------------------------------------------------------------------
sed "s|@WORK@|$work|g" configs/demo.toml > "$work/demo.toml"
mkdir -p "$work/pickup/tmp" "$work/log"
# The dashboard's bearer token ([http] token_file): random, readable by its owner only.
token=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
(umask 077 && printf '%s\n' "$token" > "$work/http-token")
say "salvod: $BUILD/salvod --config $work/demo.toml (2 shards, fsync on)"
start_salvod "$work/demo.toml" || die_start
grep -h "salvod started" "$work/salvod.log" | sed 's/^/   /' || true
say "dashboard: http://127.0.0.1:2580/#token=$token (live while the demo runs; also" \
  "curl -H 'Authorization: Bearer $token' http://127.0.0.1:2580/metrics)"

# ---- the batch --------------------------------------------------------------------------------
say "batch: one .json job, $recipients recipients over 40 domains, into $work/pickup/"
python3 - "$work/pickup/tmp/demo-job.json" "$recipients" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
domains = [f"{kind}{i}.demo" for kind in ("shop", "news", "mail", "club") for i in range(1, 11)]
names = ["Ann", "Bob", "Cem", "Dee", "Eva", "Fred", "Gus", "Hana", "Ivo", "Jo"]
content = ("From: Demo Shop <news@esp.demo>\n"
           "To: {{name}} <{{email}}>\n"
           "Subject: Hello {{name}}, your code is {{code}}\n"
           "MIME-Version: 1.0\n"
           "Content-Type: text/plain; charset=utf-8\n"
           "\n"
           "Hi {{name}},\n\n"
           "this message was queued by salvod from a pickup job and delivered to a\n"
           "salvo-sink on the loopback. Your code: {{code}}.\n\n"
           "-- the salvo demo\n")
with open(path, "w") as f:
    f.write('{"from": "bounces@esp.demo", "job": "demo", "content": ')
    f.write(json.dumps(content))
    f.write(', "recipients": [\n')
    for i in range(n):
        email = f"user{i}@{domains[i % len(domains)]}"
        r = {"email": email, "vars": {"name": names[i % len(names)], "email": email, "code": 1000 + i}}
        f.write(("," if i else "") + json.dumps(r) + "\n")
    f.write("]}\n")
EOF
t_start=$(date +%s.%N)
mv "$work/pickup/tmp/demo-job.json" "$work/pickup/demo-job.json"

# Follows salvod's accounting log (incrementally, rotated files included) and rewrites one
# progress line every 0.5 s until every recipient has a final outcome (delivered, bounced
# or expired), the timeout passes, or salvod exits. The batch's recipients are everything
# not at esp.demo; lines for bounces@esp.demo are the DSNs going back to the job's sender
# (after the last final outcome it waits up to 10 s more for those to be delivered).
# Writes the counts to $work/counts; exit 0 = all final, 3 = timeout, 4 = salvod exited.
say "delivering (timeout ${timeout_s}s; Ctrl-C stops everything)"
# It runs in the background so that a signal to this script is handled at once (wait).
monitor_rc=0
python3 - "$work/log" "$recipients" "$timeout_s" "$salvod_pid" "$t_start" "$work/counts" \
  "$work/sink.progress" <<'EOF' &
import datetime, glob, json, os, sys, time
log_dir, n, timeout_s, pid, t_start, out = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), \
    int(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
sink_progress = sys.argv[7]
keys = ("received", "delivered", "deferred", "bounced", "expired", "dsn", "dsn_delivered")
c = dict.fromkeys(keys, 0)
offsets, partial = {}, {}
last_final = [0.0]  # wall time (the line's ts) of the latest final outcome
last_delivered = [0.0]  # ... and of the latest delivery
first = [0, 0.0]  # deliveries at the first attempt, and the wall time of the latest one

def wall(ts):
    try:
        d = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
        return d.replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return time.time()

def follow():
    names = sorted(glob.glob(os.path.join(log_dir, "accounting-*.jsonl")))
    names.append(os.path.join(log_dir, "accounting.jsonl"))
    for name in names:
        try:
            with open(name, "rb") as f:
                f.seek(offsets.get(name, 0))
                data = partial.pop(name, b"") + f.read()
                offsets[name] = f.tell()
        except OSError:
            continue
        lines = data.split(b"\n")
        if lines[-1]:
            partial[name] = lines[-1]
        for line in lines[:-1]:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            t = j.get("type", "")
            if t == "dsn":
                c["dsn"] += 1
            elif str(j.get("rcpt", "")).lower().endswith("@esp.demo"):
                if t == "delivered":
                    c["dsn_delivered"] += 1
            elif t in c:
                c[t] += 1
                if t in ("delivered", "bounced", "expired"):
                    last_final[0] = max(last_final[0], wall(j.get("ts")))
                if t == "delivered":
                    last_delivered[0] = max(last_delivered[0], wall(j.get("ts")))
                    if j.get("attempt") == 1:
                        first[0] += 1
                        first[1] = max(first[1], wall(j.get("ts")))

def sink_messages():  # what the MX hosts have received (salvo-sink --progress-file)
    try:
        with open(sink_progress) as f:
            return json.load(f).get("messages", 0)
    except (OSError, ValueError):
        return 0

def alive():
    try:
        os.kill(pid, 0)
        return True
    except OSError:
        return False

deadline = t_start + timeout_s
prev_d, prev_t = 0, time.time()
rc, done_at = 3, None
tty = sys.stdout.isatty()
while True:
    follow()
    now = time.time()
    rate = max(0, c["delivered"] - prev_d) / max(1e-3, now - prev_t)
    prev_d, prev_t = c["delivered"], now
    line = (f"{now - t_start:6.1f}s  received {c['received']}/{n}  delivered {c['delivered']}  "
            f"deferred {c['deferred']}  bounced {c['bounced']}  expired {c['expired']}  "
            f"DSNs {c['dsn']}  {rate:,.0f} msgs/s  (sinks: {sink_messages()})")
    print(("\r  " + line + "   ") if tty else ("  " + line), end="" if tty else "\n", flush=True)
    final = c["delivered"] + c["bounced"] + c["expired"]
    if final >= n and done_at is None:
        done_at, rc = (last_final[0] or now), 0
    if done_at is not None and (c["dsn_delivered"] >= c["dsn"] or now > done_at + 10):
        break
    if not alive():
        rc = 4
        break
    if now >= deadline and done_at is None:
        break
    time.sleep(max(0.0, 0.5 - (time.time() - now)))
if tty:
    print()
with open(out, "w") as f:
    f.write(" ".join(str(c[k]) for k in keys) +
            f" {done_at if done_at else time.time()} {last_delivered[0] or t_start}"
            f" {first[0]} {first[1] or t_start}\n")
sys.exit(rc)
EOF
monitor_pid=$!
wait "$monitor_pid" || monitor_rc=$?
monitor_pid=""
read -r received delivered deferred bounced expired dsn dsn_delivered t_done t_last_delivery \
  first_n t_first < "$work/counts"
if [ "$monitor_rc" = 4 ]; then
  echo "demo.sh: salvod exited early; the end of its log ($work/salvod.log):" >&2
  tail -n 20 "$work/salvod.log" >&2 || true
  exit 1
fi
finished=0
[ "$monitor_rc" = 0 ] && finished=1

# Stop salvod and the sinks (in that order) and read the sinks' own counts.
stop_salvod
stop_sink

say "summary"
python3 - "$work/sink.json" "$recipients" "$received" "$delivered" "$deferred" "$bounced" \
  "$expired" "$dsn" "$dsn_delivered" "$t_start" "$t_done" "$finished" "$t_last_delivery" \
  "$first_n" "$t_first" <<'EOF'
import json, sys
a = sys.argv
sink_path = a[1]
n, received, delivered, deferred, bounced, expired, dsn, dsn_delivered = map(int, a[2:10])
t_start, t_done, finished, t_last = float(a[10]), float(a[11]), a[12] == "1", float(a[13])
first_n, t_first = int(a[14]), float(a[15])
elapsed = max(1e-6, t_done - t_start)
print(f"  batch            1 .json job: one queued message (the template, stored once) for "
      f"{n:,} recipients, each sent as its own expanded message")
print(f"  recipients       {n:,}  (received into the spool: {received:,})")
print(f"  delivered        {delivered:,}")
print(f"  bounced          {bounced:,}   expired {expired:,}")
print(f"  deferral attempts {deferred:,}  (451s retried on the 2s/3s schedule)")
print(f"  DSNs             {dsn:,} written, {dsn_delivered:,} delivered to bounces@esp.demo")
print(f"  elapsed          {elapsed:.2f} s from the drop into pickup/ to "
      f"{'the last final outcome' if finished else 'the timeout'}")
busy = t_first - t_start
if first_n and busy > 0:
    print(f"  delivered rate   first attempts: {first_n:,} delivered in {busy:.2f} s = "
          f"{first_n / busy:,.0f} msgs/s; then {delivered - first_n:,} more on retries")
print(f"  {'' if first_n and busy > 0 else 'delivered rate'}{' ' * 17 if first_n and busy > 0 else '   '}"
      f"overall: {delivered / elapsed:,.0f} msgs/s over the elapsed time "
      f"(the retry schedule sets it)")
try:
    s = json.load(open(sink_path))
except (OSError, ValueError):
    print("  sinks            no report (salvo-sink did not print its JSON)")
else:
    print(f"  sinks counted    {s['messages']:,} messages, {s['recipients']:,} recipients, "
          f"{s['bytes']:,} bytes; answered 451 to {s['deferred']:,} RCPTs, 550 to {s['rejected']:,}")
    for l in s["listeners"]:
        print(f"    {l['address']:<16} {l['messages']:>7,} messages  peak {l['peak_connections']} "
              f"connections  peak {l['peak_msgs_per_s']:,} msgs/s  451s {l['deferred']:,}  550s {l['rejected']:,}")
if not finished:
    print(f"  TIMEOUT: {delivered + bounced + expired:,} of {n:,} recipients have a final outcome")
EOF
if [ "$finished" != 1 ]; then
  echo "demo.sh: timed out after ${timeout_s}s; the end of salvod's log:" >&2
  tail -n 10 "$work/salvod.log" >&2 || true
  [ "$keep" = 1 ] || echo "demo.sh: run with --keep to keep the spool and logs" >&2
  exit 1
fi
say "done: every recipient has a final outcome; salvod and the sinks are stopped"
