# Shared by the bench/load scripts (sourced, not run): loopback ports and Postfix install.

# A free TCP port on 127.0.0.1.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# Waits up to 20 s for something to listen on 127.0.0.1:$1.
wait_port() {
  for _ in $(seq 1 400); do
    if python3 -c "import socket; s=socket.socket(); s.settimeout(0.2); s.connect(('127.0.0.1',$1))" 2>/dev/null; then return 0; fi
    sleep 0.05
  done
  echo "$(basename "$0"): nothing listening on port $1" >&2; return 1
}

# Debian's postfix without its own configuration (so no daemon starts); never left running.
ensure_postfix() {
  if ! command -v postfix >/dev/null || ! command -v smtp-sink >/dev/null; then
    echo "$(basename "$0"): installing postfix (the comparison baseline)" >&2
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postfix >/dev/null
  fi
  postfix stop >/dev/null 2>&1 || true
}
