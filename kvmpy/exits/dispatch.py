"""Decide what an exit means: route I/O to the buses, turn the rest into stop/fallback actions.

`handle_exit` is a plain function of an exit value and the buses, so every branch can be
tested with a hand-made exit and no guest.
"""

from __future__ import annotations

import logging

from ..bus import Bus
from ..native import lib
from .kinds import (
    RESUME,
    Debug,
    GuestDebug,
    Fallback,
    FailEntry,
    Halt,
    Interrupted,
    InternalError,
    MmioRead,
    MmioWrite,
    PortIn,
    PortOut,
    Resume,
    Shutdown,
    Stop,
    StopReason,
    SystemEvent,
    Unhandled,
)

log = logging.getLogger("kvmpy.exits")


class Buses:
    """The two address spaces a guest reaches devices through, and what fell outside them."""

    def __init__(self, ports: Bus | None = None, mmio: Bus | None = None):
        self.ports = ports or Bus("port")
        self.mmio = mmio or Bus("mmio")
        self.unclaimed: dict[str, int] = {}  # "port 0x2f8" -> access count

    def note_unclaimed(self, space: str, address: int) -> None:
        key = f"{space} {address:#x}"
        self.unclaimed[key] = self.unclaimed.get(key, 0) + 1


def _all_ones(size: int) -> bytes:
    # What an ISA bus returns when no device decodes the address.
    return b"\xff" * size


def handle_exit(exit, buses: Buses):
    """The action for `exit`: Resume (maybe with IN data), Stop, Fallback or Unhandled."""
    kind = type(exit)
    if kind is PortOut:
        return _port_out(exit, buses)
    if kind is PortIn:
        return _port_in(exit, buses)
    if kind is MmioWrite:
        if not buses.mmio.write(exit.address, exit.size, exit.value):
            buses.note_unclaimed("mmio", exit.address)
        return RESUME
    if kind is MmioRead:
        value = buses.mmio.read(exit.address, exit.size)
        if value is None:
            buses.note_unclaimed("mmio", exit.address)
            return Resume(_all_ones(exit.size))
        return Resume(value.to_bytes(exit.size, "little"))
    return _handle_rare(exit)


def _port_out(exit: PortOut, buses: Buses):
    mapping = buses.ports.find(exit.port)
    if mapping is None:
        buses.note_unclaimed("port", exit.port)
        return RESUME
    offset, size, write = exit.port - mapping.base + mapping.offset, exit.size, mapping.device.write
    if exit.count == 1:
        write(offset, size, int.from_bytes(exit.data, "little"))
    else:  # string I/O (rep outs): one device write per element, in order
        data = exit.data
        for start in range(0, size * exit.count, size):
            write(offset, size, int.from_bytes(data[start : start + size], "little"))
    return RESUME


def _port_in(exit: PortIn, buses: Buses):
    mapping = buses.ports.find(exit.port)
    if mapping is None:
        buses.note_unclaimed("port", exit.port)
        return Resume(_all_ones(exit.size * exit.count))
    offset, size, read = exit.port - mapping.base + mapping.offset, exit.size, mapping.device.read
    if exit.count == 1:
        return Resume(read(offset, size).to_bytes(size, "little"))
    return Resume(b"".join(read(offset, size).to_bytes(size, "little") for _ in range(exit.count)))


def _handle_rare(exit):
    kind = type(exit)
    if kind is Interrupted:
        return RESUME
    if kind is Shutdown:
        return Stop(StopReason("shutdown", 1, "guest shutdown (triple fault)"))
    if kind is SystemEvent:
        if exit.kind == lib.KVM_SYSTEM_EVENT_SHUTDOWN:
            return Stop(StopReason("poweroff", 0, "guest powered off"))
        if exit.kind == lib.KVM_SYSTEM_EVENT_RESET:
            return Stop(StopReason("reset", 0, "guest reset"))
        if exit.kind == lib.KVM_SYSTEM_EVENT_CRASH:
            return Stop(StopReason("shutdown", 1, "guest crashed (system event)"))
        return Unhandled(exit, f"system event {exit.kind}")
    if kind is InternalError:
        if exit.is_emulation_failure:
            return Fallback(exit)
        return Unhandled(exit, f"KVM internal error, suberror {exit.suberror}")
    if kind is Halt:
        return Stop(StopReason("halt", 0, "guest halted with no interrupt source"))
    if kind is FailEntry:
        return Unhandled(exit, f"VM entry failed, hardware reason {exit.hardware_reason:#x}")
    if kind is GuestDebug:
        return Debug(exit)  # only a debugger enables these exits: the vCPU loop hands it over
    return Unhandled(exit, f"unknown exit reason {getattr(exit, 'reason', exit)}")
