#!/bin/sh
# Rebuilds the fuzzing seeds here from the examples (objects with maps, programs,
# global data, .kconfig and export types): python3 -m ecc must be runnable.
set -e
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ex in bootstrap globals; do
  python3 -m ecc build "$root/examples/$ex/$ex.bpf.c" "$root/examples/$ex/$ex.h" -o "$tmp/$ex" -n
  cp "$tmp/$ex/$ex.bpf.o" "$here/$ex.o"
done
python3 -m ecc build "$root/tests/cases/all_data_sections/prog.bpf.c" -o "$tmp/all" -n
cp "$tmp/all/prog.bpf.o" "$here/all_data_sections.o"
