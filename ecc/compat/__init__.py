"""Which kernels can run a BPF object (``ecc check --kernel``), decided from BTF alone.

- btfext: the object's CO-RE relocation records and its functions' code;
- target: a kernel's BTF, indexed just enough for CO-RE (fast over many kernels);
- relo: each relocation resolved with libbpf's rules; flow: whether a poisoned
  instruction is still reachable (a guarded one is not);
- features: program types, attach points, map types, helpers and kfuncs, with
  the first kernel version of each;
- report: a kernel's verdict, the matrix and the JSON.

Pure: bytes in, frozen dataclasses out; reading files and archives is the caller's.
"""

from .report import KernelVerdict, ObjectFacts, analyze_object, check_kernel, kernel_version, matrix

__all__ = ["KernelVerdict", "ObjectFacts", "analyze_object", "check_kernel", "kernel_version",
           "matrix"]
