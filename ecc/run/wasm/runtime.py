"""The one module of ecc that imports wasmtime: compile, link and run a WASI guest.

The guest gets WASI preview 1 (argv, the environment it is given, stdout and stderr
inherited, clocks; a directory only when ``dirs`` names one) and the six
``wasm_bpf`` imports of ``host``. Its imports are checked against the host's types
before linking, so a mismatch is one line naming the import. The engine uses
epoch interruption: a signal bumps the epoch and the guest traps at its next loop
or call, callbacks included.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import wasmtime

from ...errors import EccError, WasmError
from .guest import GuestFault, GuestMemory, GuestStopped
from .host import IMPORTS, BpfHost, describe
from .signals import StopOnSignals

MODULE = "wasm_bpf"
TABLE = "__indirect_function_table"
SAMPLE_TYPE = (("i32", "i32", "i32"), ("i32",))
_VALTYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64}


def _types(ty: wasmtime.FuncType) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(str(p) for p in ty.params), tuple(str(r) for r in ty.results)


def _trap_text(exc: BaseException) -> str:
    """The last line of a wasmtime trap ("wasm trap: integer divide by zero"): the
    backtrace above it is noise in a one-line error."""
    message = exc.message if isinstance(exc, wasmtime.Trap) else str(exc)
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    return lines[-1] if lines else "trap"


def _is_interrupt(exc: BaseException) -> bool:
    return isinstance(exc, wasmtime.Trap) and exc.trap_code == wasmtime.TrapCode.INTERRUPT


class _Caller:
    """The ``Guest`` of one host call: memory and table reached through wasmtime's
    Caller, which is valid only while that call runs."""

    def __init__(self, caller: wasmtime.Caller, stop_signal: Callable[[], int | None]) -> None:
        self._caller = caller
        self._stop_signal = stop_signal
        exported = caller.get("memory")
        if not isinstance(exported, wasmtime.Memory):
            raise GuestFault("the guest exports no memory named 'memory'")
        mem = exported
        self._memory = GuestMemory(
            lambda: mem.data_len(caller),
            lambda start, length: bytes(mem.read(caller, start, start + length)),
            lambda start, data: _write(mem, caller, start, data))

    @property
    def memory(self) -> GuestMemory:
        return self._memory

    def call_sample(self, index: int, ctx: int, data: int, size: int) -> int:
        table = self._caller.get(TABLE)
        if not isinstance(table, wasmtime.Table):
            raise GuestFault(f"the guest exports no function table '{TABLE}' (link it "
                             f"with -Wl,--export-table)")
        entries = table.size(self._caller)
        if index >= entries:
            raise GuestFault(f"sample callback {index} is not in the guest's function "
                             f"table ({entries} entries)")
        func = table.get(self._caller, index)  # type: ignore[arg-type]
        if not isinstance(func, wasmtime.Func):
            raise GuestFault(f"sample callback {index} is an empty slot of the guest's "
                             f"function table")
        have = _types(func.type(self._caller))
        if have != SAMPLE_TYPE:
            raise GuestFault(f"sample callback {index} has type {describe(*have)}, not "
                             f"{describe(*SAMPLE_TYPE)}")
        try:
            result = func(self._caller, ctx, data, size)
        except wasmtime.Trap as exc:
            signum = self._stop_signal()
            if signum is not None and _is_interrupt(exc):
                raise GuestStopped(signum) from None
            raise GuestFault(f"sample callback {index} trapped: {_trap_text(exc)}") from None
        return int(result) if isinstance(result, int) else 0


def _write(mem: wasmtime.Memory, caller: wasmtime.Caller, start: int, data: bytes) -> None:
    mem.write(caller, data, start)


def _check_imports(module: wasmtime.Module, origin: str) -> None:
    for imp in module.imports:
        if imp.module != MODULE:
            continue
        want = IMPORTS.get(imp.name or "")
        if want is None:
            raise WasmError(f"{origin}: imports {MODULE}.{imp.name}, which the host does not "
                            f"provide (it has {', '.join(IMPORTS)})")
        if not isinstance(imp.type, wasmtime.FuncType):
            raise WasmError(f"{origin}: imports {MODULE}.{imp.name} as something other than "
                            f"a function")
        have = _types(imp.type)
        if have != want:
            raise WasmError(f"{origin}: imports {MODULE}.{imp.name} with type "
                            f"{describe(*have)}; the host's is {describe(*want)}")


def _define(linker: wasmtime.Linker, host: BpfHost, stop_signal: Callable[[], int | None],
            origin: str) -> None:
    for name, fn in host.functions().items():
        params, results = IMPORTS[name]
        ty = wasmtime.FuncType([_VALTYPES[p]() for p in params],
                               [_VALTYPES[r]() for r in results])

        def call(caller: wasmtime.Caller, *args: int,
                 _fn: Callable[..., int] = fn, _name: str = name) -> int:
            try:
                guest = _Caller(caller, stop_signal)
            except GuestFault as exc:
                raise WasmError(f"{origin}: {_name}: {exc}") from None
            return _fn(guest, *args)

        linker.define_func(MODULE, name, ty, call, access_caller=True)


def run_wasi(wasm: bytes, origin: str, argv: Sequence[str], *,
             env: Sequence[tuple[str, str]] = (),
             dirs: Sequence[tuple[str, str]] = ()) -> int:
    """Run the WASI command ``wasm`` to its end: its exit code, 128 + the signal
    number when SIGINT or SIGTERM stopped it. Raises WasmError when the module is
    not valid, does not link, traps or breaks the wasm_bpf ABI; whatever it loaded
    is detached and closed in every case."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    engine = wasmtime.Engine(config)
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        raise WasmError(f"{origin}: not a valid WebAssembly module: {_trap_text(exc)}") from None
    _check_imports(module, origin)

    wasi = wasmtime.WasiConfig()
    wasi.argv = list(argv)
    wasi.env = [[k, v] for k, v in env]
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    for host_dir, guest_dir in dirs:
        wasi.preopen_dir(host_dir, guest_dir)
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    store.set_epoch_deadline(1)

    with StopOnSignals(engine.increment_epoch) as signals:
        def stop_signal() -> int | None:
            return signals.signum

        host = BpfHost(origin, stop_signal)
        try:
            return _start(engine, module, store, host, stop_signal, origin)
        except GuestStopped as exc:
            return 128 + exc.signum
        finally:
            try:
                host.close_all()
            except EccError as exc:
                raise WasmError(f"{origin}: closing what the guest loaded: {exc}") from None


def _start(engine: wasmtime.Engine, module: wasmtime.Module, store: wasmtime.Store,
           host: BpfHost, stop_signal: Callable[[], int | None], origin: str) -> int:
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    _define(linker, host, stop_signal, origin)
    try:
        instance = linker.instantiate(store, module)
        start = instance.exports(store).get("_start")
        if not isinstance(start, wasmtime.Func):
            raise WasmError(f"{origin}: exports no _start function (build it as a WASI "
                            f"command, with a main)")
        start(store)
    except wasmtime.ExitTrap as exc:
        return int(exc.code)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        signum = stop_signal()
        if signum is not None:
            raise GuestStopped(signum) from None
        raise WasmError(f"{origin}: {_failure(exc)}") from None
    return 0


def _failure(exc: Any) -> str:
    text = _trap_text(exc)
    if isinstance(exc, wasmtime.Trap):
        return f"the guest trapped: {text}"
    return text
