#!/usr/bin/env bash
# Run a command as if on the other CPU kind: `mixed_precision: auto` decides from /proc/cpuinfo's
# bf16 flags, so a private mount namespace with an edited cpuinfo makes the command, and every
# process it starts (pytest, `dvc repro` stages), take that kind's precision path. The instructions
# the CPU really has do not change: numbers and speeds stay this machine's. Needs root (unshare -m).
#   scripts/as_cpu_kind.sh avx2 python -m pytest -q -ra    # auto -> fp32, as on the AVX2-only kind
#   scripts/as_cpu_kind.sh bf16 python -m pytest -q -ra    # auto -> bf16, as on the Zen4 kind
set -euo pipefail
kind=${1:?usage: as_cpu_kind.sh avx2|bf16 COMMAND...}
shift
fake=$(mktemp)
trap 'rm -f "$fake"' EXIT
case $kind in
  avx2) sed -E 's/ (avx512_bf16|amx_bf16)\b//g' /proc/cpuinfo >"$fake" ;;
  bf16) sed -E '/^flags/{/avx512_bf16/!s/$/ avx512_bf16/}' /proc/cpuinfo >"$fake" ;;
  *) echo "as_cpu_kind.sh: kind must be avx2 or bf16, got '$kind'" >&2; exit 2 ;;
esac
unshare --mount --propagation private -- bash -c 'mount --bind "$0" /proc/cpuinfo && exec "$@"' "$fake" "$@"
