#!/bin/sh
# The image's entry point: build the eBPF program(s) in /src with ecc.
#   docker run --rm --user "$(id -u):$(id -g)" -v "$PWD:/src" IMAGE [OPTIONS]
# One program: `ecc build NAME.bpf.c [NAME.h] OPTIONS`, with NAME.h when it
# exists; several: `ecc build /src OPTIONS`, each with its own NAME.h. The
# outputs go beside the sources (or where -o says). Started as root (no
# --user), it hands what it wrote to the owner of /src, so the user's folder
# never holds root's files.
set -eu

no_program() {
  # shellcheck disable=SC2016 # the $PWD is for the user's shell, not this one
  echo 'ecc: error: /src has no .bpf.c program; mount the folder that holds it: docker run --rm -v "$PWD:/src" IMAGE' >&2
  exit 1
}

cd /src 2>/dev/null || no_program
count=0
first=
for f in *.bpf.c; do
  [ -f "$f" ] || continue
  count=$((count + 1))
  [ -n "$first" ] || first=$f
done
[ "$count" -gt 0 ] || no_program

if [ "$count" -eq 1 ]; then
  stem=${first%%.*}
  if [ -f "$stem.h" ]; then
    set -- "$first" "$stem.h" "$@"
  else
    set -- "$first" "$@"
  fi
else
  set -- /src "$@"
fi

owner=$(stat -c %u:%g /src)
if [ "$(id -u)" != 0 ] || [ "$owner" = 0:0 ]; then
  exec ecc build "$@"
fi
stamp=$(mktemp)
status=0
ecc build "$@" || status=$?
find /src -newer "$stamp" -user 0 -exec chown -h "$owner" {} +
rm -f "$stamp"
exit "$status"
