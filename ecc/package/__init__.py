"""The package: its codec, reading and checking it, and the containers it travels in.

Below both the compiler and the loader: nothing here imports ``ecc.compiler``
or ``ecc.run``. ``codec`` encodes and decodes the JSON/YAML document (spec
section 2) and writes files atomically; ``source`` reads a package from a
file and checks it against its object; ``tar`` and ``embedded`` read the
``--btfgen`` tar and the ``-s`` executable; ``schema`` is the format's JSON Schema.
"""

from .codec import (
    MAX_OBJECT_BYTES,
    ZLIB_LEVEL,
    Package,
    decode_object,
    dumps_json,
    dumps_yaml,
    encode_object,
    make_package,
    parse_package,
    wasm_header,
    write_atomic,
)

__all__ = [
    "MAX_OBJECT_BYTES",
    "ZLIB_LEVEL",
    "Package",
    "decode_object",
    "dumps_json",
    "dumps_yaml",
    "encode_object",
    "make_package",
    "parse_package",
    "wasm_header",
    "write_atomic",
]
