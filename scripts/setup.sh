#!/usr/bin/env bash
# Installs what the build and tests need, idempotently: Debian packages by name
# (skipped when present), then the pinned data the tests read (scripts/fetch_data.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git ccache ca-certificates xz-utils zstd
  libboost-dev nlohmann-json3-dev libpcre2-dev libtomlplusplus-dev libcli11-dev
  libopenblas-dev libxxhash-dev libsentencepiece-dev sentencepiece
  libgtest-dev libgmock-dev libbenchmark-dev
  curl python3
  prometheus systemd  # promtool checks /metrics; systemd-analyze checks deploy/tandem.service
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js may come from elsewhere than Debian (with its own npm); install only if absent.
command -v npm >/dev/null || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if [ -x scripts/fetch_data.sh ]; then scripts/fetch_data.sh; fi
# The official OpenAI client for the server's end-to-end tests, pinned by package-lock.json.
if [ -f tests/e2e/package-lock.json ] && [ ! -f tests/e2e/node_modules/openai/package.json ]; then
  (cd tests/e2e && npm ci --no-audit --no-fund --silent)
fi
