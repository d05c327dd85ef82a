#!/usr/bin/env bash
# HTTP surface of salvod: how fast a bulk job is queued through
# POST /api/v1/inject (202 = durable) against the same job through the pickup directory
# (file gone = durable), and what a /metrics scrape and a dashboard poll cost.
# Delivery is held ([[shaping]] "*" max_connections = 0): only intake is measured.
#
#   bench/load/http.sh [--build DIR] [--recipients N] [--scrapes N]
#
# Needs curl and python3. Loopback only; every loop is bounded.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "$here/lib.sh"
BUILD="$root/build"
RCPTS=100000
SCRAPES=200
while [ $# -gt 0 ]; do
  case "$1" in
    --build) BUILD=$2; shift 2 ;;
    --recipients) RCPTS=$2; shift 2 ;;
    --scrapes) SCRAPES=$2; shift 2 ;;
    *) echo "usage: $0 [--build DIR] [--recipients N] [--scrapes N]" >&2; exit 2 ;;
  esac
done
command -v curl >/dev/null || { echo "http.sh: needs curl (apt-get install curl)" >&2; exit 2; }

work=$(mktemp -d /tmp/salvo-http-bench.XXXXXX)
cleanup() { stop_all; rm -rf "$work"; }
on_exit cleanup

port=$(free_port)
mkdir -p "$work/pickup/tmp"
write_salvod_config "$work/salvo.toml" "$work" --cores 2 --pickup --resolver 127.0.0.1:9 \
  --hold --http "127.0.0.1:$port"
/usr/bin/python3 - "$work/job.json" "$RCPTS" <<'EOF'
import json, sys
path, n = sys.argv[1], int(sys.argv[2])
job = {"from": "news@esp.test", "job": "bench",
       "content": "From: News <news@esp.test>\nTo: {{email}}\nSubject: Hello {{name}}\n\n" +
                  "Hello {{name}}, this is the news.\n" * 20,
       "recipients": [{"email": f"user{i}@d{i % 100}.example", "vars": {"name": f"User {i}"}}
                      for i in range(n)]}
open(path, "w").write(json.dumps(job))
EOF
size=$(stat -c %s "$work/job.json")
start_salvod "$work/salvo.toml" || die_start
# Every request but /healthz needs the bearer token write_salvod_config made.
auth="Authorization: Bearer $(tr -d '\n' < "$work/http-token")"

now() { date +%s.%N; }
rate() { python3 -c "import sys; print(f'{int(sys.argv[1]) / (float(sys.argv[3]) - float(sys.argv[2])):,.0f}')" "$@"; }
secs() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$@"; }

# 1. HTTP inject: until the 202 (after the group commit).
t0=$(now)
code=$(curl -s -o "$work/inject.json" -w '%{http_code}' -X POST -H "$auth" -H 'Content-Type: application/json' \
  --data-binary @"$work/job.json" "http://127.0.0.1:$port/api/v1/inject")
t1=$(now)
[ "$code" = 202 ] || { echo "inject answered $code: $(cat "$work/inject.json")" >&2; exit 1; }

# 2. Pickup: the same job, until the file is unlinked (after its commit) from where the
# shard claimed it (pickup/.work/shard-N/).
cp "$work/job.json" "$work/pickup/tmp/job.json"
t2=$(now)
mv "$work/pickup/tmp/job.json" "$work/pickup/job.json"
picked_up() {
  [ ! -e "$work/pickup/job.json" ] &&
    [ -z "$(find "$work/pickup/.work" -type f -print -quit 2>/dev/null)" ]
}
wait_until 60 0.01 picked_up || true
t3=$(now)
picked_up || { echo "pickup did not take the job within 60 s" >&2; exit 1; }

# 3. Scrapes: /metrics and the dashboard's /api/v1/status, sequential.
# One curl, one keep-alive connection, every body to /dev/null (-o per URL).
args() { for _ in $(seq 1 "$SCRAPES"); do printf '%s\n' -o /dev/null "http://127.0.0.1:$port$1"; done; }
mapfile -t metrics_args < <(args /metrics)
mapfile -t status_args < <(args /api/v1/status)
t4=$(now)
curl -s -H "$auth" "${metrics_args[@]}"
t5=$(now)
curl -s -H "$auth" "${status_args[@]}"
t6=$(now)
metrics_bytes=$(curl -s -H "$auth" "http://127.0.0.1:$port/metrics" | wc -c)

echo "job: $RCPTS recipients, $size bytes of JSON; fsync on; 2 shards"
printf '%-44s %10s s  %12s rcpts/s\n' "POST /api/v1/inject -> 202" "$(secs "$t0" "$t1")" "$(rate "$RCPTS" "$t0" "$t1")"
printf '%-44s %10s s  %12s rcpts/s\n' "pickup .json -> file unlinked" "$(secs "$t2" "$t3")" "$(rate "$RCPTS" "$t2" "$t3")"
python3 -c "import sys; n=int(sys.argv[1]); print(f'{\"GET /metrics (\" + sys.argv[4] + \" bytes)\":<44} {(float(sys.argv[3])-float(sys.argv[2]))/n*1000:10.2f} ms per scrape ({n} on one connection)')" "$SCRAPES" "$t4" "$t5" "$metrics_bytes"
python3 -c "import sys; n=int(sys.argv[1]); print(f'{\"GET /api/v1/status\":<44} {(float(sys.argv[3])-float(sys.argv[2]))/n*1000:10.2f} ms per poll ({n} on one connection)')" "$SCRAPES" "$t5" "$t6"
