"""The thread that runs one vCPU in the software interpreter (`--accel interp`), with the same
control interface as kvmpy/vcpu/runner.py's VcpuRunner: start, kick, request_stop,
pause/resume, join, exit_count, and `on_stop(reason)` when the guest stops itself.

The thread runs the interpreter in batches of `batch` instructions. Between batches, with the
chipset lock held, it serves what its local APIC received (INIT, STARTUP, NMI), fires the
timer events that are due (the PIT's, and its own local APIC timer's) and flags a pending
external interrupt to the interpreter, which asks for the vector (`ack_irq`) as soon as IF
allows. A vCPU in HLT, or waiting for STARTUP, sleeps on a condition variable until the next
timer deadline or until something wakes it: an interrupt, an IPI, a stop or pause request.
Anything that needs the vCPU's attention mid-batch (INIT, STARTUP, NMI, stop, pause) makes
the interpreter return within its poll interval (about a thousand instructions).

The interpreter's port and MMIO accesses go to the machine's buses, as KVM's exits do, except
that the local APIC page (wherever IA32_APIC_BASE puts it) is this vCPU's own.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .. import layout
from ..exits.kinds import StopReason
from .cpu import SoftCpu, StopReason as RunEnd
from .platform.lapic import APIC_BASE_ADDRESS, APIC_BASE_BSP, APIC_BASE_ENABLE

log = logging.getLogger("kvmpy.interp")

BATCH_INSTRUCTIONS = 50_000  # about 1 ms of kernel code: the latency of timer events (10k is slower, 200k no faster)
RFLAGS_IF = 1 << 9
MISC_ENABLE_FAST_STRING = 1 << 0
NS_PER_S = 1_000_000_000

# MSRs the interpreter does not keep that guests read or write unconditionally. Others raise
# #GP, which is what the guest's *_safe accessors expect of an absent MSR.
MSR_BIOS_SIGN_ID = 0x8B  # microcode revision: Linux writes 0, then reads it back
QUIET_MSRS = {MSR_BIOS_SIGN_ID: 0}


def power_on(cpu: SoftCpu, bsp: bool, tsc_offset: int) -> None:
    """The state of a vCPU out of reset or INIT: real mode at F000:FFF0, its local APIC
    enabled at the architectural address; the TSC keeps counting through it."""
    cpu.reset()
    cpu.set("apic_base", layout.LAPIC_ADDR | APIC_BASE_ENABLE | (APIC_BASE_BSP if bsp else 0))
    cpu.set("misc_enable", MISC_ENABLE_FAST_STRING)
    cpu.set("tsc_offset", tsc_offset)


def start_at_vector(cpu: SoftCpu, vector: int) -> None:
    """Where a STARTUP IPI sends an application processor: real mode at vector:0000 (page `vector`)."""
    cpu.set_segment("cs", selector=vector << 8, base=vector << 12)
    cpu.set("rip", 0)


class _CpuBus:
    """The interpreter's callbacks for one vCPU: its local APIC, then the machine's buses."""

    def __init__(self, index: int, cpu: SoftCpu, chipset, buses):
        self.index = index
        self.cpu = cpu
        self.chipset = chipset
        self.lapic = chipset.lapics[index]
        self.buses = buses
        self.accesses = 0  # port and MMIO accesses: what would be exits under KVM

    def _lapic_offset(self, gpa: int) -> int | None:
        base = self.cpu.raw.msr.apic_base
        if not base & APIC_BASE_ENABLE:
            return None
        offset = gpa - (base & APIC_BASE_ADDRESS)
        return offset if 0 <= offset < layout.LAPIC_SIZE else None

    def pio_in(self, port: int, size: int) -> int:
        self.accesses += 1
        value = self.buses.ports.read(port, size)
        if value is None:
            self.buses.note_unclaimed("port", port)
            return (1 << (8 * size)) - 1
        return value

    def pio_out(self, port: int, size: int, value: int) -> None:
        self.accesses += 1
        if not self.buses.ports.write(port, size, value):
            self.buses.note_unclaimed("port", port)

    def mmio_read(self, gpa: int, size: int) -> int:
        self.accesses += 1
        offset = self._lapic_offset(gpa)
        if offset is not None:
            with self.chipset.lock:
                return self.lapic.read(offset, size)
        value = self.buses.mmio.read(gpa, size)
        if value is None:
            self.buses.note_unclaimed("mmio", gpa)
            return (1 << (8 * size)) - 1
        return value

    def mmio_write(self, gpa: int, size: int, value: int) -> None:
        self.accesses += 1
        offset = self._lapic_offset(gpa)
        if offset is not None:
            with self.chipset.lock:
                self.lapic.write(offset, size, value)
        elif not self.buses.mmio.write(gpa, size, value):
            self.buses.note_unclaimed("mmio", gpa)

    def ack_irq(self) -> int:
        with self.chipset.lock:
            vector = self.chipset.acknowledge(self.index)
            if self.chipset.interrupt_pending(self.index):
                self.cpu.raise_irq()  # the interpreter asks again once this one is delivered
            return vector

    def rdmsr(self, msr: int) -> int | None:
        value = QUIET_MSRS.get(msr)
        if value is None:
            log.debug("vCPU %d: rdmsr %#x: no such MSR (#GP)", self.index, msr)
        return value

    def wrmsr(self, msr: int, value: int) -> bool:
        if msr in QUIET_MSRS:
            return True
        log.debug("vCPU %d: wrmsr %#x <- %#x: no such MSR (#GP)", self.index, msr, value)
        return False


class InterpRunner:
    """Runs interpreted vCPU `index` in its own thread until the VM stops."""

    def __init__(self, index: int, cpu: SoftCpu, chipset, buses, on_stop: Callable[[StopReason], None],
                 tsc_offset: int, batch: int = BATCH_INSTRUCTIONS):
        self.index = index
        self.vcpu = cpu
        self.chipset = chipset
        self.lapic = chipset.lapics[index]
        self.on_stop = on_stop
        self.tsc_offset = tsc_offset
        self.batch = batch
        self.bus = _CpuBus(index, cpu, chipset, buses)
        cpu.bus = self.bus
        self.waiting_for_startup = True  # until started at the image's entry or by STARTUP
        self.unimplemented: dict[str, int] = {}  # mnemonic -> times the guest met it
        self._cond = threading.Condition(chipset.lock)
        self._stop_requested = False
        self._pause_requested = False
        self._paused = threading.Event()
        self._resume = threading.Event()
        self._exited = False
        self._thread: threading.Thread | None = None
        self.debug = None          # the DebugSession (kvmpy/accel/debug.py) while a debugger is attached
        self.debug_hold = False    # the debugger wants this vCPU parked between batches
        self._debug_step = False   # released to run one instruction
        self.lapic.listener = self._on_apic_event

    @property
    def exit_count(self) -> int:
        return self.bus.accesses

    # --- control from other threads ----------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name=f"vcpu{self.index}", daemon=True)
        self._thread.start()

    def kick(self) -> None:
        """End the current batch (or wait) so the thread looks at its requests."""
        self.vcpu.request_stop()
        with self._cond:
            self._cond.notify_all()

    @property
    def stop_requested(self) -> bool:
        return self._stop_requested

    def request_stop(self) -> None:
        self._stop_requested = True
        self._resume.set()
        self.kick()
        if self.debug is not None:
            self.debug.wake()

    def pause(self, timeout: float | None = None) -> bool:
        """Hold the vCPU between batches (for state inspection); True once it is held (or its
        thread has ended: then it runs no more either)."""
        self._resume.clear()
        self._pause_requested = True
        self.kick()
        return self._paused.wait(timeout)

    def resume(self) -> None:
        self._pause_requested = False
        if not self._exited:
            self._paused.clear()
        self._resume.set()

    @property
    def running(self) -> bool:
        """The thread has started and not yet ended."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def parked(self) -> bool:
        """Nothing but an NMI, INIT or STARTUP could make this vCPU run again: it waits for
        STARTUP, or sits in HLT with interrupts disabled. Read it while paused."""
        cpu = self.vcpu
        return self.waiting_for_startup or (cpu.halted and not cpu.raw.rflags & RFLAGS_IF)

    def _on_apic_event(self) -> None:
        """The local APIC received something (called with the chipset lock held, any thread)."""
        lapic = self.lapic
        if lapic.init_pending or lapic.startup_vector is not None or lapic.nmi_pending:
            self.vcpu.request_stop()  # served between batches
        if self.chipset.interrupt_pending(self.index):
            self.vcpu.raise_irq()
        self._cond.notify_all()

    # --- the vCPU thread ---------------------------------------------------------------------
    def _main(self) -> None:
        try:
            reason = self._loop()
        except Exception as error:  # any failure stops the whole VM, with the reason
            log.debug("vCPU %d failed", self.index, exc_info=True)
            reason = StopReason.error(f"vCPU {self.index}: {error}")
        if reason is not None:
            self.on_stop(reason)
        self._exited = True
        self._paused.set()  # a pause that raced with the end of the thread returns at once
        if self.debug is not None:
            self.debug.wake()

    def _loop(self) -> StopReason | None:
        if self.debug is not None:  # a step asked for before this thread started
            self._debug_step = self.debug.park(self.index)
        while self._wait_until_runnable():
            if self._debug_step:
                self._debug_step = False
                self.vcpu.raw.stop_request = 0  # a kick left from the hold would end the step before it began
                result = self.vcpu.run(1, no_interrupts=True)
                self.debug.report(self.debug.backend.stop_for(self.index, result.reason))
            else:
                debug = self.debug
                result = self.vcpu.run(self.batch, stop_on_unimplemented=True,
                                       breakpoints=debug is not None and debug.backend.breakpoints_armed)
                if result.reason in (RunEnd.BREAKPOINT, RunEnd.WATCHPOINT):
                    debug.report(debug.backend.stop_for(self.index, result.reason))
                    continue
            reason = self._finish(result)
            if reason is not None:
                return reason
        return None

    def _wait_until_runnable(self) -> bool:
        """Serve requests and events until the vCPU can run a batch (or, released by the
        debugger to step, one instruction); False: the VM stops."""
        while not self._stop_requested:
            if self._pause_requested:
                self._paused.set()
                self._resume.wait()
                continue
            if self.debug_hold:
                self._debug_step = self.debug.park(self.index)
                if self._debug_step:
                    return not self._stop_requested
                continue
            with self._cond:
                if self._ready():
                    return True
                if not (self._stop_requested or self._pause_requested or self.debug_hold):
                    self._cond.wait(self._sleep_seconds())
        return False

    def _ready(self) -> bool:
        """With the lock held: serve APIC events and due timers; can the vCPU run now?"""
        self._serve_apic_events()
        self.chipset.poll(self.index)
        cpu = self.vcpu
        pending = self.chipset.interrupt_pending(self.index)
        if pending:
            cpu.raise_irq()
        if self.waiting_for_startup:
            return False
        raw = cpu.raw
        return not cpu.halted or bool(raw.nmi_pending) or (pending and bool(raw.rflags & RFLAGS_IF))

    def _sleep_seconds(self) -> float | None:
        """How long a vCPU that cannot run may sleep: until its next timer event, if any
        timer could wake it (in HLT with interrupts enabled), else until it is woken."""
        if self.waiting_for_startup or not self.vcpu.raw.rflags & RFLAGS_IF:
            return None
        deadline = self.chipset.next_deadline(self.index)
        return None if deadline is None else max(0.0, (deadline - self.chipset.clock()) / NS_PER_S)

    def _serve_apic_events(self) -> None:
        lapic, cpu = self.lapic, self.vcpu
        if lapic.init_pending:
            lapic.init_pending = False
            lapic.reset()
            power_on(cpu, lapic.bsp, self.tsc_offset)
            self.waiting_for_startup = not lapic.bsp  # the BSP runs from the reset vector
        if lapic.startup_vector is not None:
            vector, lapic.startup_vector = lapic.startup_vector, None
            if self.waiting_for_startup:  # a running CPU ignores STARTUP
                start_at_vector(cpu, vector)
                self.waiting_for_startup = False
        if lapic.nmi_pending:
            lapic.nmi_pending = False
            if not self.waiting_for_startup:
                cpu.raise_nmi()

    def _finish(self, result) -> StopReason | None:
        """Act on why a batch ended; a StopReason if the guest stopped the VM."""
        if result.reason == RunEnd.SHUTDOWN:
            return StopReason("shutdown", 1, "guest shutdown (triple fault)")
        if result.reason == RunEnd.IO_ERROR:
            raise result.error
        if result.reason == RunEnd.UNIMPLEMENTED:
            name = self.vcpu.mnemonic()
            seen = self.unimplemented.get(name, 0)
            self.unimplemented[name] = seen + 1
            if not seen:
                log.warning("vCPU %d: the interpreter does not implement '%s' (at rip %#x): the guest gets #UD",
                            self.index, name, self.vcpu.get("rip"))
            return self._finish(self.vcpu.run(1))  # executed without the stop flag: raises #UD
        return None  # budget spent, HLT, or a request: the loop looks at what to do
