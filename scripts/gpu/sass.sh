#!/usr/bin/env bash
# The SASS of the kernels in BINARY whose mangled name matches REGEX (grep -E),
# from the toolkit's cuobjdump, one "Function :" section each, to stdout:
#   scripts/gpu/sass.sh .device/NAME/tandem 'int4_gemv_v2_kernelI6__halfS.*Li1ELb1E'
# Then count instructions by opcode with scripts/gpu/sass_mix.py.
set -euo pipefail
bin=${1:?usage: sass.sh BINARY REGEX}
re=${2:?usage: sass.sh BINARY REGEX}
cuobjdump=$(command -v cuobjdump || echo /usr/local/cuda/bin/cuobjdump)
[ -x "$cuobjdump" ] || { echo "sass.sh: no cuobjdump (looked in PATH and /usr/local/cuda/bin)" >&2; exit 1; }
"$cuobjdump" -sass "$bin" | awk -v re="$re" '
  /Function : / { keep = ($0 ~ re) }
  keep { print }'
