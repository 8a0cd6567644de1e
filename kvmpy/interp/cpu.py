"""SoftCpu: a software x86 CPU (the C interpreter in native/interp) driven from Python.

The C side keeps all architectural state in one `struct interp_cpu`; this class owns that
struct, the array of guest RAM regions it reads and writes directly, and the handle through
which the interpreter's callbacks (port I/O, MMIO, interrupt acknowledge, unknown MSRs)
reach a Python "bus" object with the methods

    pio_in(port, size) -> int          pio_out(port, size, value)
    mmio_read(gpa, size) -> int        mmio_write(gpa, size, value)
    ack_irq() -> int (vector, or -1)   rdmsr(msr) -> int | None   wrmsr(msr, value) -> bool

(rdmsr/wrmsr are optional: without them unknown MSRs raise #GP in the guest).  An exception
raised by a bus method stops the run with StopReason.IO_ERROR and is kept in RunResult.error.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass

from ..errors import ConfigError

try:
    from .._interp import ffi, lib
except ImportError as exc:  # pragma: no cover - only when the extension was never built
    raise ImportError("kvmpy._interp is not built: run `python native/build_interp.py`") from exc

GPR_NAMES = ("rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi",
             "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15")
SEGMENT_NAMES = ("es", "cs", "ss", "ds", "fs", "gs", "ldtr", "tr")
SEGMENT_FIELDS = ("base", "limit", "selector", "type", "present", "dpl", "db", "s", "l", "g",
                  "avl", "unusable")
CONTROL_NAMES = ("rip", "rflags", "cr0", "cr2", "cr3", "cr4", "cr8", "efer", "xcr0")
MSR_NAMES = ("star", "lstar", "cstar", "sfmask", "kernel_gs_base", "sysenter_cs", "sysenter_esp",
             "sysenter_eip", "tsc_offset", "tsc_aux", "apic_base", "pat", "misc_enable")
XMM_OFFSET = 160
MXCSR_OFFSET = 24
CPUID_SIGNIFICANT_INDEX = 1


class StopReason(enum.IntEnum):
    BUDGET = lib.INTERP_STOP_BUDGET
    HLT = lib.INTERP_STOP_HLT
    SHUTDOWN = lib.INTERP_STOP_SHUTDOWN
    CPL3 = lib.INTERP_STOP_CPL3
    IO_ERROR = lib.INTERP_STOP_IO_ERROR
    REQUEST = lib.INTERP_STOP_REQUEST
    UNIMPLEMENTED = lib.INTERP_STOP_UNIMPLEMENTED
    BREAKPOINT = lib.INTERP_STOP_BREAKPOINT
    WATCHPOINT = lib.INTERP_STOP_WATCHPOINT


class WatchKind(enum.IntFlag):
    """What a watchpoint of `SoftCpu.set_watchpoints` watches."""
    READ = lib.INTERP_WATCH_READ
    WRITE = lib.INTERP_WATCH_WRITE


@dataclass
class RunResult:
    reason: StopReason
    executed: int                       # instructions retired during this run
    error: BaseException | None = None  # the bus exception behind StopReason.IO_ERROR


class NullBus:
    """A bus with nothing on it: reads return all ones, writes vanish, no interrupts."""

    def pio_in(self, port: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def pio_out(self, port: int, size: int, value: int) -> None:
        pass

    def mmio_read(self, gpa: int, size: int) -> int:
        return (1 << (8 * size)) - 1

    def mmio_write(self, gpa: int, size: int, value: int) -> None:
        pass

    def ack_irq(self) -> int:
        return -1


# The SoftCpu running in this thread: cffi's onerror hook gets no arguments that identify it.
_running = threading.local()


class SoftCpu:
    """One virtual CPU executed by the software interpreter over a GuestMemory."""

    def __init__(self, memory, bus=None):
        self.memory = memory
        self.bus = bus if bus is not None else NullBus()
        self.error: BaseException | None = None
        self._c = ffi.new("struct interp_cpu *")
        lib.interp_reset(self._c)
        self._buffers = [ffi.from_buffer("uint8_t[]", r.backing, require_writable=True)
                         for r in memory.regions]
        self._regions = ffi.new("struct interp_region[]", max(1, len(self._buffers)))
        for i, (region, buf) in enumerate(zip(memory.regions, self._buffers)):
            self._regions[i].gpa = region.guest_addr
            self._regions[i].size = region.size
            self._regions[i].host = buf
        self._c.regions = self._regions
        self._c.nregions = len(self._buffers)
        self._handle = ffi.new_handle(self)
        self._c.ctx = self._handle
        self._breakpoints = self._watches = ffi.NULL  # the arrays behind _c.breakpoints/_c.watches

    # ---- raw access -------------------------------------------------------------------
    @property
    def raw(self):
        """The `struct interp_cpu *` cdata (for copying state to and from KVM)."""
        return self._c

    def reset(self) -> None:
        lib.interp_reset(self._c)

    def close(self) -> None:
        """Let go of guest RAM, so its mappings can be closed."""
        self._c.nregions = 0
        for buffer in self._buffers:
            ffi.release(buffer)
        self._buffers = []

    # ---- registers --------------------------------------------------------------------
    def get(self, name: str) -> int:
        name = name.lower()
        if name in GPR_NAMES:
            return self._c.gpr[GPR_NAMES.index(name)]
        if name in CONTROL_NAMES:
            return getattr(self._c, name)
        if name.startswith("dr") and name[2:].isdigit():
            return self._c.dr[int(name[2:])]
        if name in MSR_NAMES:
            return getattr(self._c.msr, name)
        if name == "mxcsr":
            return int.from_bytes(bytes(self._c.fxsave[MXCSR_OFFSET:MXCSR_OFFSET + 4]), "little")
        if name in SEGMENT_NAMES:
            return self._c.seg[SEGMENT_NAMES.index(name)].selector
        raise KeyError(f"unknown register {name!r}")

    def set(self, name: str, value: int) -> None:
        name = name.lower()
        value &= (1 << 64) - 1
        if name in GPR_NAMES:
            self._c.gpr[GPR_NAMES.index(name)] = value
        elif name in CONTROL_NAMES:
            setattr(self._c, name, value)
        elif name.startswith("dr") and name[2:].isdigit():
            self._c.dr[int(name[2:])] = value
        elif name in MSR_NAMES:
            setattr(self._c.msr, name, value)
        elif name == "mxcsr":
            self._c.fxsave[MXCSR_OFFSET:MXCSR_OFFSET + 4] = value.to_bytes(8, "little")[:4]
        else:
            raise KeyError(f"unknown register {name!r}")

    def regs(self) -> dict[str, int]:
        """GPRs, RIP and RFLAGS by name."""
        out = {name: self._c.gpr[i] for i, name in enumerate(GPR_NAMES)}
        out["rip"] = self._c.rip
        out["rflags"] = self._c.rflags
        return out

    def set_regs(self, **values: int) -> None:
        for name, value in values.items():
            self.set(name, value)

    def get_segment(self, name: str) -> dict[str, int]:
        seg = self._c.seg[SEGMENT_NAMES.index(name.lower())]
        return {f: getattr(seg, f) for f in SEGMENT_FIELDS}

    def set_segment(self, name: str, **fields: int) -> None:
        seg = self._c.seg[SEGMENT_NAMES.index(name.lower())]
        for key, value in fields.items():
            if key not in SEGMENT_FIELDS:
                raise KeyError(f"unknown segment field {key!r}")
            setattr(seg, key, value)

    def get_dtable(self, name: str) -> tuple[int, int]:
        table = getattr(self._c, name.lower())
        return table.base, table.limit

    def set_dtable(self, name: str, base: int, limit: int) -> None:
        table = getattr(self._c, name.lower())
        table.base = base
        table.limit = limit

    def xmm(self, index: int) -> int:
        off = XMM_OFFSET + 16 * index
        return int.from_bytes(bytes(self._c.fxsave[off:off + 16]), "little")

    def set_xmm(self, index: int, value: int) -> None:
        off = XMM_OFFSET + 16 * index
        self._c.fxsave[off:off + 16] = value.to_bytes(16, "little")

    @property
    def fxsave_image(self) -> bytes:
        return bytes(ffi.buffer(self._c.fxsave))

    @fxsave_image.setter
    def fxsave_image(self, data: bytes) -> None:
        if len(data) != 512:
            raise ConfigError("an FXSAVE image is 512 bytes")
        ffi.buffer(self._c.fxsave)[:] = data

    def set_cpuid(self, entries) -> None:
        """entries: (function, index, flags, eax, ebx, ecx, edx) tuples, like kvm_cpuid_entry2."""
        entries = list(entries)
        if len(entries) > lib.INTERP_MAX_CPUID:
            raise ConfigError(f"at most {lib.INTERP_MAX_CPUID} CPUID entries")
        for i, (function, index, flags, eax, ebx, ecx, edx) in enumerate(entries):
            e = self._c.cpuid[i]
            e.function, e.index, e.flags = function, index, flags
            e.eax, e.ebx, e.ecx, e.edx = eax, ebx, ecx, edx
        self._c.ncpuid = len(entries)

    # ---- run control -----------------------------------------------------------------
    @property
    def halted(self) -> bool:
        return bool(self._c.halted)

    @halted.setter
    def halted(self, value: bool) -> None:
        self._c.halted = int(value)

    @property
    def insn_count(self) -> int:
        return self._c.insn_count

    @property
    def cpl(self) -> int:
        """CPL by KVM's convention (SS.DPL; 0 in real mode)."""
        if not self._c.cr0 & 1:
            return 0
        return self._c.seg[SEGMENT_NAMES.index("ss")].dpl

    def raise_irq(self) -> None:
        """Mark an external interrupt pending: bus.ack_irq() is asked for it when IF allows."""
        self._c.irq_pending = 1

    def raise_nmi(self) -> None:
        self._c.nmi_pending = 1

    def request_stop(self) -> None:
        """Stop a run in progress (safe from another thread) within a few thousand instructions."""
        self._c.stop_request = 1

    def flush_tlb(self) -> None:
        lib.interp_flush_tlb(self._c)

    def mnemonic(self) -> str:
        """Mnemonic of the instruction at CS:RIP."""
        return ffi.string(lib.interp_mnemonic(self._c)).decode()

    # ---- debugger support -------------------------------------------------------------
    def set_breakpoints(self, addresses) -> None:
        """The linear addresses a run with `breakpoints=True` stops before (StopReason.BREAKPOINT).
        Only between runs: the interpreter reads the array while it runs."""
        addresses = list(addresses)
        self._breakpoints = ffi.new("uint64_t[]", addresses) if addresses else ffi.NULL
        self._c.breakpoints = self._breakpoints
        self._c.nbreakpoints = len(addresses)

    def set_watchpoints(self, watches) -> None:
        """(linear address, length, WatchKind) triples: a data access that overlaps one ends
        the run after its instruction with StopReason.WATCHPOINT (see `watch_hit`)."""
        watches = list(watches)
        self._watches = ffi.new("struct interp_watch[]", len(watches)) if watches else ffi.NULL
        for slot, (address, length, kind) in enumerate(watches):
            self._watches[slot].addr, self._watches[slot].len, self._watches[slot].kind = address, length, int(kind)
        self._c.watches = self._watches
        self._c.nwatches = len(watches)

    @property
    def watch_hit(self) -> int | None:
        """Index (in set_watchpoints' order) of the watchpoint behind StopReason.WATCHPOINT."""
        return self._c.watch_hit if self._c.watch_hit >= 0 else None

    def run(self, max_insns: int, stop_on_cpl3: bool = False, stop_on_unimplemented: bool = False,
            breakpoints: bool = False, no_interrupts: bool = False) -> RunResult:
        """Run up to `max_insns` instructions. `breakpoints`: stop at set_breakpoints'
        addresses; `no_interrupts`: deliver no interrupt or NMI (a debugger's single step)."""
        flags = (lib.INTERP_RUN_STOP_ON_CPL3 if stop_on_cpl3 else 0) | \
                (lib.INTERP_RUN_STOP_ON_UNIMPL if stop_on_unimplemented else 0) | \
                (lib.INTERP_RUN_BREAKPOINTS if breakpoints else 0) | \
                (lib.INTERP_RUN_NO_IRQ if no_interrupts else 0)
        self.error = None
        before = self._c.insn_count
        previous = getattr(_running, "cpu", None)
        _running.cpu = self
        try:
            reason = lib.interp_run(self._c, max_insns, flags)
        finally:
            _running.cpu = previous
        return RunResult(StopReason(reason), self._c.insn_count - before, self.error)

    def _callback_failed(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc
        self._c.callback_error = 1


def _mask(size: int) -> int:
    return (1 << (8 * size)) - 1


def _onerror(exception, exc_value, traceback):
    """Last resort for errors outside the wrappers' own try blocks: stop the run."""
    cpu = getattr(_running, "cpu", None)
    if cpu is not None:
        cpu._callback_failed(exc_value if exc_value is not None else exception())
    return None


@ffi.def_extern(onerror=_onerror)
def interp_pio_in(ctx, port, size):
    cpu = ffi.from_handle(ctx)
    try:
        return int(cpu.bus.pio_in(port, size)) & _mask(size)
    except BaseException as exc:  # noqa: BLE001 - must never unwind into C
        cpu._callback_failed(exc)
        return 0


@ffi.def_extern(onerror=_onerror)
def interp_pio_out(ctx, port, size, value):
    cpu = ffi.from_handle(ctx)
    try:
        cpu.bus.pio_out(port, size, value)
    except BaseException as exc:  # noqa: BLE001
        cpu._callback_failed(exc)


@ffi.def_extern(onerror=_onerror)
def interp_mmio_read(ctx, gpa, size):
    cpu = ffi.from_handle(ctx)
    try:
        return int(cpu.bus.mmio_read(gpa, size)) & _mask(size)
    except BaseException as exc:  # noqa: BLE001
        cpu._callback_failed(exc)
        return 0


@ffi.def_extern(onerror=_onerror)
def interp_mmio_write(ctx, gpa, size, value):
    cpu = ffi.from_handle(ctx)
    try:
        cpu.bus.mmio_write(gpa, size, value)
    except BaseException as exc:  # noqa: BLE001
        cpu._callback_failed(exc)


@ffi.def_extern(onerror=_onerror)
def interp_ack_irq(ctx):
    cpu = ffi.from_handle(ctx)
    try:
        return int(cpu.bus.ack_irq())
    except BaseException as exc:  # noqa: BLE001
        cpu._callback_failed(exc)
        return -1


@ffi.def_extern(onerror=_onerror)
def interp_rdmsr(ctx, msr, value_out):
    cpu = ffi.from_handle(ctx)
    try:
        handler = getattr(cpu.bus, "rdmsr", None)
        value = handler(msr) if handler is not None else None
        if value is None:
            return 1
        value_out[0] = int(value) & _mask(8)
        return 0
    except BaseException as exc:  # noqa: BLE001
        cpu._callback_failed(exc)
        return 1


@ffi.def_extern(onerror=_onerror)
def interp_wrmsr(ctx, msr, value):
    cpu = ffi.from_handle(ctx)
    try:
        handler = getattr(cpu.bus, "wrmsr", None)
        return 0 if handler is not None and handler(msr, value) else 1
    except BaseException as exc:  # noqa: BLE001
        cpu._callback_failed(exc)
        return 1
