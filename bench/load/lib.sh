# shellcheck shell=bash
# Shared by the bench/load scripts and tools/demo.sh (sourced, not run): building the
# programs, loopback ports, bounded waits, and starting and stopping the processes a run
# needs: salvod (with a generated config), salvo-sink or Postfix's smtp-sink, and a private
# Postfix instance. Every wait is bounded in count and time; every process started here is
# stopped by stop_all (call it from the script's EXIT trap, see on_exit).
#
# The caller sets BUILD (the build directory) before calling anything that runs a program,
# and runs from the repository root (or gives an absolute BUILD).
#
# Globals set here: salvod_pid, sink_pid, pfx_conf (Postfix's config directory while it
# runs), pfx_port; start_failure and start_log: why the last start_* returned 1, and the
# log of the process that did not start.

lib_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
me=$(basename "$0")
salvod_pid=""
sink_pid=""
pfx_conf=""
pfx_port=""
start_failure=""
start_log=""

die() { echo "$me: $*" >&2; exit 1; }

# ---- build and install -------------------------------------------------------------------

# Builds the targets (Release) into $BUILD unless every one of them is there already.
ensure_built() {  # target...
  local t
  for t; do
    [ -x "$BUILD/$t" ] || { build_release "$@"; return; }
  done
}
# Installs what is missing, configures $BUILD (Release, Ninja) if needed, builds the targets.
build_release() {  # target...
  "$lib_root/tools/install_deps.sh"
  if [ ! -f "$BUILD/build.ninja" ]; then
    cmake -S "$lib_root" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  fi
  cmake --build "$BUILD" --target "$@"
}

# Debian's postfix without its own configuration (so no daemon starts); never left running.
ensure_postfix() {
  if ! command -v postfix >/dev/null || ! command -v smtp-sink >/dev/null; then
    echo "$me: installing postfix (the comparison baseline)" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
  fi
  postfix stop >/dev/null 2>&1 || true
}

# ---- waits and ports -----------------------------------------------------------------------

# Runs the command every STEP seconds until it succeeds (0) or SECONDS (whole) have passed
# (1). The command runs at least once.
wait_until() {  # seconds step command...
  local limit_us=$(($1 * 1000000)) step=$2 start
  shift 2
  start=${EPOCHREALTIME//[!0-9]/}
  until "$@"; do
    (( ${EPOCHREALTIME//[!0-9]/} - start < limit_us )) || return 1
    nap "$step"
  done
}
# Sleeps SECONDS (fractions allowed) without starting a process: a wait polling every 20 ms
# with /bin/sleep and cat took 5% of this 2-core box from the run it was timing (perf -a).
# read -t on a pipe nobody writes to (opened once) is the timer.
exec {nap_fd}<> <(:)
nap() { read -rt "$1" -u "$nap_fd" _ || true; }

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Is the port free on every address (nothing bound there)? 0 yes, 1 no.
port_free() {  # port address...
  python3 - "$@" <<'EOF'
import socket, sys
port = int(sys.argv[1])
for addr in sys.argv[2:]:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind((addr, port))
    except OSError:
        sys.exit(1)
    finally:
        s.close()
EOF
}

# Is something listening on 127.0.0.1:port?
listening() {  # port
  python3 -c "import socket; s=socket.socket(); s.settimeout(0.2); s.connect(('127.0.0.1',$1))" \
    2>/dev/null
}
# Waits up to 20 s for something to listen on 127.0.0.1:port.
wait_port() {  # port
  wait_until 20 0.05 listening "$1" || { echo "$me: nothing listening on port $1" >&2; return 1; }
}

# ---- processes -----------------------------------------------------------------------------

# SIGTERM, up to SECONDS (default 60) for it to exit, then SIGKILL; reaps it. No-op for "".
stop_pid() {  # pid name [seconds]
  local pid=$1
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  if ! wait_until "${3:-60}" 0.1 gone "$pid"; then
    echo "$me: $2 (pid $pid) did not stop on SIGTERM: killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}
gone() { ! kill -0 "$1" 2>/dev/null; }

# Waits up to SECONDS for the ready file a just-started process writes once it listens.
# 0 when it is there; 1 (start_failure, start_log) when the process exited or the time
# passed; the process is then stopped.
wait_ready() {  # pid name ready-file log seconds
  local pid=$1 name=$2 ready=$3 seconds=$5
  wait_until "$seconds" 0.05 ready_or_gone "$ready" "$pid" || true
  [ -s "$ready" ] && return 0
  if gone "$pid"; then start_failure="$name exited early"
  else start_failure="$name did not become ready within $seconds s"; fi
  start_log=$4
  stop_pid "$pid" "$name" 5
  return 1
}
ready_or_gone() { [ -s "$1" ] || gone "$2"; }

# Why the last start_* returned 1 and the last lines of that process's log, on one line.
start_why() { echo "$start_failure: $(tail -n 3 "$start_log" 2>/dev/null | tr '\n' ' ')"; }
# After a start_* returned 1: says why on stderr, with the end of the log, and exits 1.
die_start() {
  echo "$me: $start_failure${start_log:+; the end of its log ($start_log):}" >&2
  [ -z "$start_log" ] || tail -n 20 "$start_log" >&2 || true
  exit 1
}

# ---- signing ---------------------------------------------------------------------------------

# The machine's fastest single-core DKIM signing rate (signatures/s) for rsa (RSA-2048) or
# ed25519: OpenSSL's (`openssl speed`) or salvo's own (bench_dkim, when built: it signs
# Ed25519 with wolfCrypt), whichever is higher, so a limit computed from it is the strictest.
sign_rate() {  # rsa|ed25519
  local speed own=0 filter
  if [ "$1" = rsa ]; then
    speed=$(openssl speed -seconds 3 -mr rsa2048 2>/dev/null | awk -F: '/^\+F2:/ {print $4}')
    filter=BM_SignRsa2048/1024
  else
    speed=$(openssl speed -seconds 3 -mr ed25519 2>/dev/null | awk -F: '/^\+F6:/ {print $5}')
    filter=BM_SignEd25519/1024
  fi
  if [ -x "$BUILD/bench/bench_dkim" ]; then
    own=$("$BUILD/bench/bench_dkim" --benchmark_filter="^$filter\$" --benchmark_min_time=2 \
      --benchmark_format=json 2>/dev/null |
      python3 -c "import json,sys; print(json.load(sys.stdin)['benchmarks'][0]['items_per_second'])" ||
      echo 0)
  fi
  python3 -c "print(max(float('${speed:-0}'), float('${own:-0}')))"
}

# ---- results and the MX hosts of the relay benchmarks (e2e.sh, tls_policy.sh) ---------------

now() { date +%s.%N; }
# CPU seconds (user + system, all threads) a live process has used so far.
cpu_seconds() {  # pid
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat"
}
calc() { python3 -c "print($1)"; }
json_field() { python3 -c "import json; j=json.load(open('$1')); print($2)"; }

# Results: key=value lines in the file $results (the caller sets it), formatted at the end;
# failures counts the rows that failed.
results=""
failures=0
result() { echo "$1=$2" >> "$results"; }
fail_row() {  # key reason
  echo "$me: $1: $2" >&2
  result "$1" "n/a"
  result "$1.why" "$2"
  failures=$((failures + 1))
}

# Runs the Python report on stdin with the arguments given; it may `import results`
# (bench/load/results.py: reads the results file).
report() {  # argument...
  PYTHONDONTWRITEBYTECODE=1 PYTHONPATH="$lib_root/bench/load" python3 - "$@"
}

# One salvo-sink listening on 127.0.0.2 .. 127.0.0.(1 + COUNT) (mx_addrs), on one port free
# on all of them (sink_port), with the options given and its progress file DIR/sink.progress
# (sink_messages reads it); exits (die) when no port is free or it does not start.
mx_addrs=()
sink_port=""
sink_progress=""
start_mx_sinks() {  # dir count [salvo-sink option...]
  local dir=$1 count=$2 p a i
  local -a listen_args=()
  shift 2
  mx_addrs=()
  for i in $(seq 0 $((count - 1))); do mx_addrs+=("127.0.0.$((2 + i))"); done
  sink_port=""
  for _ in $(seq 1 20); do
    p=$(free_port)
    if port_free "$p" "${mx_addrs[@]}"; then sink_port=$p; break; fi
  done
  [ -n "$sink_port" ] || die "no port free on all of 127.0.0.2-$((1 + count))"
  for a in "${mx_addrs[@]}"; do listen_args+=(--listen "$a:$sink_port"); done
  sink_progress=$dir/sink.progress
  start_sink "$dir" "${listen_args[@]}" --progress-file "$sink_progress" "$@" || die_start
}
sink_count=0
read_sink_count() {  # sets sink_count to the sinks' running total (no subshell, no cat)
  local text=""
  { IFS= read -r -d '' text < "$sink_progress"; } 2>/dev/null || true
  if [[ $text =~ \"messages\":\ ([0-9]+) ]]; then sink_count=${BASH_REMATCH[1]}; else sink_count=0; fi
}
sink_messages() {  # the sinks' running total
  read_sink_count
  echo "$sink_count"
}
# Polls the progress file until it shows at least TARGET messages; sets reached_at (epoch s).
# Bounded: gives up after SECONDS (returns 1).
reached_at=""
sink_reached() { read_sink_count; [ "$sink_count" -ge "$1" ]; }
wait_sink() {  # target seconds
  wait_until "$2" 0.02 sink_reached "$1" || return 1
  # shellcheck disable=SC2034  # read by the scripts
  reached_at=$(now)
}

# ---- salvod ----------------------------------------------------------------------------------

# Writes a salvod config for a run whose spool, log_dir and control socket live in DIR.
#   --cores N                    [node] cores (default 0: one shard per core)
#   --fsync true|false           [node] fsync (default true)
#   --pickup                     [node] pickup = DIR/pickup
#   --listen PORT                an SMTP listener on 127.0.0.1:PORT, max_connections_per_ip 10000
#   --resolver HOST:PORT         [dns] resolvers (absent: salvod's default)
#   --smtp-port PORT             [delivery] smtp_port
#   --retry DURATION             [delivery] retry_schedule = [DURATION]
#   --max-connections N          [[shaping]] domain "*": max_connections (0 holds delivery)
#   --max-messages-per-connection N   ... and max_messages_per_connection
#   --hold                       --max-connections 0: nothing is delivered, intake only
#   --http HOST:PORT             [http] address, max_request_size 256MiB, and token_file
#                                DIR/http-token (a random bearer token, mode 0600, made
#                                if missing): send "Authorization: Bearer $(cat DIR/http-token)"
#   --route DOMAIN HOST:PORT     a [routes] entry (repeatable)
#   --dkim DOMAIN SELECTOR KEY ALG   a [[dkim]] key (repeatable; ALG rsa-sha256|ed25519-sha256)
#   --node LINE / --dns LINE / --delivery LINE / --shaping LINE   a "key = value" line more
#                                in [node], [dns], [delivery] or the [[shaping]] "*" entry
#                                (repeatable)
#   --table TEXT                 TOML appended as it is (a whole table: "[tls]\nca_bundle = ...")
write_salvod_config() {  # file dir [option...]
  local file=$1 dir=$2 cores=0 fsync=true pickup=0 listen="" resolver="" smtp_port="" retry=""
  local max_conns="" max_msgs="" http=""
  local -a routes=() dkim=() dns_lines=() delivery_lines=() shaping_lines=() tables=()
  local -a node_lines=()
  shift 2
  while [ $# -gt 0 ]; do
    case $1 in
      --cores) cores=$2; shift 2 ;;
      --fsync) fsync=$2; shift 2 ;;
      --pickup) pickup=1; shift ;;
      --listen) listen=$2; shift 2 ;;
      --resolver) resolver=$2; shift 2 ;;
      --smtp-port) smtp_port=$2; shift 2 ;;
      --retry) retry=$2; shift 2 ;;
      --max-connections) max_conns=$2; shift 2 ;;
      --max-messages-per-connection) max_msgs=$2; shift 2 ;;
      --hold) max_conns=0; shift ;;
      --http) http=$2; shift 2 ;;
      --route) routes+=("\"$2\" = [\"$3\"]"); shift 3 ;;
      --dkim) dkim+=("$2" "$3" "$4" "$5"); shift 5 ;;  # domain selector key_file algorithm
      --dns) dns_lines+=("$2"); shift 2 ;;
      --node) node_lines+=("$2"); shift 2 ;;
      --delivery) delivery_lines+=("$2"); shift 2 ;;
      --shaping) shaping_lines+=("$2"); shift 2 ;;
      --table) tables+=("$2"); shift 2 ;;
      *) echo "$me: write_salvod_config: unknown option '$1'" >&2; return 2 ;;
    esac
  done
  if [ -n "$http" ] && [ ! -s "$dir/http-token" ]; then
    (umask 077 && od -An -N24 -tx1 /dev/urandom | tr -d ' \n' > "$dir/http-token" &&
      echo >> "$dir/http-token")
  fi
  {
    echo "# generated by $me"
    echo "[node]"
    echo "hostname = \"bench.test\""
    echo "cores = $cores"
    echo "spool = \"$dir/spool\""
    [ "$pickup" = 0 ] || echo "pickup = \"$dir/pickup\""
    echo "log_dir = \"$dir/log\""
    echo "control_socket = \"$dir/ctl.sock\""
    echo "fsync = $fsync"
    # COMMITS_IN_FLIGHT (environment): compare spool commit pipelining depths (default 2).
    [ -z "${COMMITS_IN_FLIGHT:-}" ] || echo "commits_in_flight = $COMMITS_IN_FLIGHT"
    echo "spool_reserve = \"0\""
    [ ${#node_lines[@]} = 0 ] || printf '%s\n' "${node_lines[@]}"
    if [ -n "$listen" ]; then
      printf '[[listen]]\naddress = "127.0.0.1:%s"\nmax_connections_per_ip = 10000\n' "$listen"
    fi
    [ -z "$resolver${dns_lines[*]}" ] || echo "[dns]"
    [ -z "$resolver" ] || echo "resolvers = [\"$resolver\"]"
    [ ${#dns_lines[@]} = 0 ] || printf '%s\n' "${dns_lines[@]}"
    [ -z "$smtp_port$retry${delivery_lines[*]}" ] || echo "[delivery]"
    [ -z "$smtp_port" ] || echo "smtp_port = $smtp_port"
    [ -z "$retry" ] || echo "retry_schedule = [\"$retry\"]"
    [ ${#delivery_lines[@]} = 0 ] || printf '%s\n' "${delivery_lines[@]}"
    if [ -n "$max_conns$max_msgs${shaping_lines[*]}" ]; then
      printf '[[shaping]]\ndomain = "*"\n'
      [ -z "$max_conns" ] || echo "max_connections = $max_conns"
      [ -z "$max_msgs" ] || echo "max_messages_per_connection = $max_msgs"
      [ ${#shaping_lines[@]} = 0 ] || printf '%s\n' "${shaping_lines[@]}"
    fi
    [ -z "$http" ] || printf '[http]\naddress = "%s"\nmax_request_size = "256MiB"\ntoken_file = "%s"\n' \
      "$http" "$dir/http-token"
    if [ ${#routes[@]} -gt 0 ]; then
      echo "[routes]"
      printf '%s\n' "${routes[@]}"
    fi
    local i
    for ((i = 0; i < ${#dkim[@]}; i += 4)); do
      printf '[[dkim]]\ndomain = "%s"\nselector = "%s"\nkey_file = "%s"\nalgorithm = "%s"\n' \
        "${dkim[i]}" "${dkim[i + 1]}" "${dkim[i + 2]}" "${dkim[i + 3]}"
    done
    [ ${#tables[@]} = 0 ] || printf '%s\n' "${tables[@]}"
  } > "$file"
}

# Starts salvod on CONFIG with --ready-file; its stderr is appended to salvod.log next to
# the config (salvod.ready is there too). Sets salvod_pid; 0 once it is ready, 1 if it
# exited or was not ready within 60 s (start_failure, start_log; it is stopped).
start_salvod() {  # config [salvod option...]   (SALVOD: another salvod binary)
  local config=$1 dir
  shift
  dir=$(dirname "$config")
  rm -f "$dir/salvod.ready"
  "${SALVOD:-$BUILD/salvod}" --config "$config" --ready-file "$dir/salvod.ready" "$@" \
    2>> "$dir/salvod.log" &
  salvod_pid=$!
  wait_ready "$salvod_pid" salvod "$dir/salvod.ready" "$dir/salvod.log" 60 || {
    salvod_pid=""
    return 1
  }
}
stop_salvod() { stop_pid "$salvod_pid" salvod; salvod_pid=""; }

# ---- sinks -------------------------------------------------------------------------------------

# Starts one salvo-sink with the given options (--listen ... as many as wanted) and
# --ready-file DIR/sink.ready; its JSON report goes to DIR/sink.json, its stderr to
# DIR/sink.log. Sets sink_pid; 0 once it listens, 1 (start_failure, start_log) if not within 20 s.
start_sink() {  # dir [salvo-sink option...]
  local dir=$1
  shift
  rm -f "$dir/sink.ready"
  "$BUILD/salvo-sink" "$@" --ready-file "$dir/sink.ready" > "$dir/sink.json" \
    2> "$dir/sink.log" &
  sink_pid=$!
  wait_ready "$sink_pid" salvo-sink "$dir/sink.ready" "$dir/sink.log" 20 || {
    sink_pid=""
    return 1
  }
}
# Postfix's smtp-sink on 127.0.0.1:port (backlog 1024) as sink_pid; 0 once it listens.
start_smtp_sink() {  # port
  smtp-sink -u nobody "127.0.0.1:$1" 1024 > /dev/null &
  sink_pid=$!
  wait_port "$1" || {
    start_failure="smtp-sink did not listen on port $1" start_log=""
    stop_sink
    return 1
  }
}
stop_sink() { stop_pid "$sink_pid" sink; sink_pid=""; }

# ---- Postfix ----------------------------------------------------------------------------------

# Starts a private Postfix instance under DIR (conf/, queue/, data/, maillog) listening on
# 127.0.0.1:pfx_port (a free port, set here): loopback only, relays for 127.0.0.0/8, no
# local delivery, no per-client limits or delays. MAIN_CF is the main.cf lines a run adds
# (its myhostname, process limit, what it does with the mail). Sets pfx_conf; 0 once it
# listens, 1 if it did not start (the end of its maillog on stderr).
#
# master.cf is the stock one with chroot turned off for every service. The stock file
# chroots most daemons (smtpd, cleanup, smtp, ...) into queue_directory, which works only
# when /etc/services, /etc/resolv.conf, /etc/localtime and the NSS libraries have been
# copied into it (Debian's init script does that for /var/spool/postfix). A queue in a temp
# dir has none of them, so chrooted daemons there would run without them; unchrooted, they
# see the system's files as any process does, and what is measured is Postfix's work
# rather than a half-furnished chroot.
start_postfix() {  # dir main-cf
  local dir=$1 main_cf=$2
  pfx_conf="$dir/conf"
  pfx_port=$(free_port)
  mkdir -p "$pfx_conf" "$dir/queue" "$dir/data"
  # Our listener instead of the stock smtp service on port 25.
  awk '/^[a-z]/ && NF >= 8 { $5 = "n" } { print }' /etc/postfix/master.cf |
    sed '/^smtp *inet/d' > "$pfx_conf/master.cf"
  echo "127.0.0.1:$pfx_port inet n - n - - smtpd" >> "$pfx_conf/master.cf"
  {
    cat <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
mail_owner = postfix
setgid_group = postdrop
mydestination =
relay_domains =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
alias_maps =
alias_database =
local_recipient_maps =
maillog_file = $dir/maillog
maillog_file_prefixes = $dir
# No per-client limits, no inflow delay, no reverse lookups of the client.
in_flow_delay = 0
smtpd_client_connection_count_limit = 0
smtpd_client_connection_rate_limit = 0
smtpd_client_message_rate_limit = 0
smtpd_peername_lookup = no
smtpd_delay_reject = no
EOF
    printf '%s\n' "$main_cf"
  } > "$pfx_conf/main.cf"
  chown postfix "$dir/data"
  postfix -c "$pfx_conf" check >/dev/null 2>&1 || true
  if ! timeout 60 postfix -c "$pfx_conf" start >/dev/null 2>&1; then
    tail -n 5 "$dir/maillog" >&2 || true
    stop_postfix
    return 1
  fi
  wait_port "$pfx_port" || { stop_postfix; return 1; }
}
stop_postfix() {
  [ -n "$pfx_conf" ] && [ -f "$pfx_conf/main.cf" ] || return 0
  timeout 60 postfix -c "$pfx_conf" stop >/dev/null 2>&1 || true
  pfx_conf=""
}

# ---- cleanup --------------------------------------------------------------------------------

# Stops whatever is still running: salvod first (it delivers to the sinks), then Postfix,
# then the sink.
stop_all() {
  stop_salvod
  stop_postfix
  stop_sink
}

# Runs FUNCTION once when the script exits, however it exits (the exit status is kept;
# Ctrl-C exits 130, SIGTERM 143). FUNCTION should call stop_all.
on_exit() {  # function
  # shellcheck disable=SC2064  # $1 is expanded now, on purpose
  trap "lib_exit $1" EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}
lib_exit() {
  local rc=$?
  trap - EXIT INT TERM
  "$1" || true
  exit "$rc"
}
