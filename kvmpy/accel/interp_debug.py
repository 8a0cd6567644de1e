"""Debugging under the interpreter: breakpoints (software and hardware alike, any number) are
the interpreter's stop-before-address set, watchpoints its watched ranges (reads, writes or
both, any number and length), steps a one-instruction run with interrupts held back. Guest
memory is never patched."""

from __future__ import annotations

from ..interp.cpu import StopReason as RunEnd, WatchKind
from .debug import (
    CONTROL_NAMES,
    GPR_NAMES,
    SEGMENT_NAMES,
    BreakpointKind,
    Cause,
    CpuState,
    DebugBackend,
    DebugStop,
)

WATCH = {BreakpointKind.WRITE: WatchKind.WRITE, BreakpointKind.READ: WatchKind.READ,
         BreakpointKind.ACCESS: WatchKind.READ | WatchKind.WRITE}
EFER_LMA = 1 << 10
LINEAR_32BIT_MASK = 0xFFFFFFFF


class InterpDebug(DebugBackend):
    hardware_slots = None

    def __init__(self, memory, cpus):
        super().__init__(memory)
        self.cpus = cpus
        self.breakpoints: dict[tuple[BreakpointKind, int], int] = {}   # (kind, address) -> vcpu that asked
        self.watches: list[tuple[int, BreakpointKind, int, int]] = []  # (vcpu, kind, address, length)

    @property
    def breakpoints_armed(self) -> bool:
        return bool(self.breakpoints)

    # --- registers ---------------------------------------------------------------------------
    def read_state(self, vcpu: int) -> CpuState:
        cpu = self.cpus[vcpu]
        gprs = {name: cpu.get(name) for name in GPR_NAMES + ("rip", "rflags")}
        segments = {}
        for name in SEGMENT_NAMES:
            segment = cpu.get_segment(name)
            segments[name] = (segment["selector"], segment["base"])
        control = {name: cpu.get(name) for name in CONTROL_NAMES}
        return CpuState(gprs, segments, control, cpu.fxsave_image)

    def write_state(self, vcpu: int, state: CpuState) -> None:
        cpu = self.cpus[vcpu]
        for name, value in {**state.gprs, **state.control}.items():
            cpu.set(name, value)
        for name, (selector, base) in state.segments.items():
            cpu.set_segment(name, selector=selector, base=base)
        cpu.fxsave_image = state.fxsave
        cpu.flush_tlb()  # control registers may have changed

    # --- breakpoints -------------------------------------------------------------------------
    def insert(self, vcpu: int, kind: BreakpointKind, address: int, length: int) -> bool:
        if kind in WATCH:
            entry = (vcpu, kind, address, length)
            if entry not in self.watches and length > 0:
                self.watches.append(entry)
        else:
            self.breakpoints.setdefault((kind, address), vcpu)
        self._apply()
        return True

    def remove(self, vcpu: int, kind: BreakpointKind, address: int, length: int) -> bool:
        if kind in WATCH:
            found = [entry for entry in self.watches if entry[1:] == (kind, address, length)]
            for entry in found:
                self.watches.remove(entry)
        else:
            found = self.breakpoints.pop((kind, address), None) is not None
        self._apply()
        return bool(found)

    def armed(self) -> list[tuple[int, BreakpointKind, int, int]]:
        return [(vcpu, kind, address, 1) for (kind, address), vcpu in self.breakpoints.items()] + list(self.watches)

    def _apply(self) -> None:
        addresses = sorted({address for _, address in self.breakpoints})
        watches = [(address, length, WATCH[kind]) for _, kind, address, length in self.watches]
        for cpu in self.cpus:
            cpu.set_breakpoints(addresses)
            cpu.set_watchpoints(watches)

    # --- the vCPU threads' side --------------------------------------------------------------
    def stop_for(self, index: int, reason: RunEnd) -> DebugStop:
        """The stop behind a run that ended with BREAKPOINT or WATCHPOINT, or a step's end."""
        cpu = self.cpus[index]
        if reason == RunEnd.WATCHPOINT and cpu.watch_hit is not None:
            _, kind, address, _ = self.watches[cpu.watch_hit]
            return DebugStop(index, Cause.WATCHPOINT, address, kind)
        if reason == RunEnd.BREAKPOINT:
            if (BreakpointKind.SOFTWARE, self._linear_rip(cpu)) in self.breakpoints:
                return DebugStop(index, Cause.SOFTWARE_BREAKPOINT)
            return DebugStop(index, Cause.HARDWARE_BREAKPOINT)
        return DebugStop(index, Cause.STEP)

    @staticmethod
    def _linear_rip(cpu) -> int:
        """What the interpreter compares breakpoints with (native/interp/exec.c code_linear)."""
        cs = cpu.get_segment("cs")
        if cpu.get("efer") & EFER_LMA and cs["l"]:
            return cpu.get("rip")
        return (cs["base"] + cpu.get("rip")) & LINEAR_32BIT_MASK
