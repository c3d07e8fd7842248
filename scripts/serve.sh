#!/usr/bin/env bash
# `make serve`: set-up, build, then run the default models.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/tandem --version
