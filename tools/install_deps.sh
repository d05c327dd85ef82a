#!/usr/bin/env bash
# Installs every Debian package salvo needs to build, test and benchmark, if missing.
# Idempotent; quiet when everything is there. Used by tools/test.sh and tools/demo.sh.
set -euo pipefail

pkgs=(
  build-essential cmake ninja-build pkg-config python3 openssl dpkg-dev
  liburing-dev libwolfssl-dev libssl-dev libldns-dev libidn2-dev libcrypt-dev libmimalloc-dev
  libabsl-dev
  libtomlplusplus-dev libfmt-dev libspdlog-dev libcli11-dev nlohmann-json3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang-16 libclang-rt-16-dev
  libhttp-parser-dev
  swaks libnet-ssleay-perl unbound ldnsutils python3-dkim python3-prometheus-client
  chromium-headless-shell fonts-dejavu-core
)

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install_deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install_deps: need root or sudo for apt-get" >&2; exit 2; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# unbound's package enables a system service; tests start their own on a free port.
if command -v systemctl >/dev/null && systemctl is-active --quiet unbound 2>/dev/null; then
  $sudo systemctl stop unbound || true
fi
