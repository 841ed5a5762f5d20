"""The fused struct readers (ecc/run/structplan.py) against the per-member closures they
replace, over every struct and union of the running kernel's BTF: the same values for
the same bytes, so ``ecc run``'s output and the API's events cannot drift apart."""

from __future__ import annotations

import math
import random
from pathlib import Path
from typing import Any

from conftest import needs

from ecc.btf import parse_btf
from ecc.btf.types import Struct, Union
from ecc.errors import BtfError
from ecc.run.decode import Decoder, ValueDecoder

KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")


def same(a: Any, b: Any) -> bool:
    """Equal, NaN included (random bytes make NaN floats)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


@needs("kernel-btf")
def test_fused_readers_match_the_closures_on_kernel_types() -> None:
    btf = parse_btf(KERNEL_BTF.read_bytes())
    rng = random.Random(21)
    checked = fused = 0
    for t in btf:
        if not isinstance(t, Struct | Union) or not t.size or t.size > 4096:
            continue
        try:
            decoder = Decoder(btf, t.id)
        except BtfError:
            continue  # a kind the decoder refuses either way
        data = rng.randbytes(t.size)
        # The cut path reads member by member through the closures, on full data too.
        want = decoder._decode_cut(data, len(data))
        got = decoder.decode(data)
        assert same(got, want), f"{btf.describe(t.id)}: {got!r} != {want!r}"
        assert same(ValueDecoder(btf, t.id).decode(data), want)
        checked += 1
        if checked == 5000:
            break
        fused += decoder.whole.__code__.co_filename == "<ecc struct reader>"
    assert checked > 2000 and fused > checked // 2, (checked, fused)
