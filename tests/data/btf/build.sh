#!/bin/sh
# Regenerates the checked-in BTF test objects from kinds.c in both byte
# orders: kinds-el.o (little-endian, -target bpfel) and kinds-eb.o
# (big-endian, -target bpfeb). DWARF is stripped as ecc's own build does
# (llvm-strip -g keeps .BTF and .BTF.ext), which keeps the objects small
# enough to commit, so tests never need a compiler.
set -eu
cd "$(dirname "$0")"
CLANG=${CLANG:-clang-19}
STRIP=${STRIP:-llvm-strip-19}
for order in el eb; do
	"$CLANG" -g -O2 -target "bpf$order" -c kinds.c -o "kinds-$order.o"
	"$STRIP" -g "kinds-$order.o"
done
