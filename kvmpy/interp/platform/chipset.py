"""The interpreted PC's interrupt controllers and timers, wired as on a PC and as KVM wires its
in-kernel ones: ISA IRQs go to both the 8259A pair and the IOAPIC pin of the same number
(what kvmpy's MP table announces), GSIs 16-23 to the IOAPIC only, PIT channel 0 to IRQ 0,
and the 8259A's output to every CPU whose local APIC passes it on (LINT0 in ExtINT mode, or
the APIC disabled).

Everything here shares one re-entrant lock, `lock`: device register accesses from vCPU
threads, IRQ lines driven by device threads, timer polls, and the vCPU runners' waits (their
condition variables are built on it), so no state is ever seen half-updated and no lock order
can deadlock. The lock is never held while calling out of the chipset, except to the
per-CPU `LocalApic.listener`, which only flags the vCPU.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from ... import layout
from ...errors import ConfigError
from ...irq import CallbackIrqLine
from . import pic as pic_registers
from .apic_bus import ApicBus
from .ioapic import IoApic
from .lapic import LocalApic
from .pic import PicPair
from .pit import Pit
from .speaker import SpeakerPort

ISA_IRQS = 16


class _Locked:
    """A bus device whose register accesses take the chipset lock."""

    def __init__(self, device, lock):
        self._device = device
        self._lock = lock

    def read(self, offset: int, size: int) -> int:
        with self._lock:
            return self._device.read(offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        with self._lock:
            self._device.write(offset, size, value)


class Chipset:
    """PIC pair, PIT, port 0x61, IOAPIC and one local APIC per vCPU; `clock()` is in ns."""

    def __init__(self, cpus: int, apic_bus_hz: int, clock: Callable[[], int] = time.monotonic_ns):
        self.lock = threading.RLock()
        self.clock = clock
        self.apic_bus = ApicBus()
        self.lapics = [LocalApic(index, apic_bus_hz, clock, self.apic_bus, bsp=index == 0) for index in range(cpus)]
        self.ioapic = IoApic(self.apic_bus, layout.IOAPIC_PINS, ioapic_id=cpus)  # the MP table's ID
        self.pic = PicPair(on_output=self._pic_output)
        self.pit = Pit(clock, on_irq=self._pit_edge)
        self.speaker = SpeakerPort(self.pit, clock)

    # --- interrupt lines -----------------------------------------------------------------
    def set_irq(self, irq: int, level: bool) -> None:
        with self.lock:
            if irq < ISA_IRQS:
                self.pic.set_irq(irq, level)
            self.ioapic.set_irq(irq, level)

    def irq_line(self, irq: int) -> CallbackIrqLine:
        if not 0 <= irq < layout.IOAPIC_PINS:
            raise ConfigError(f"IRQ {irq} is not an IOAPIC pin (0-{layout.IOAPIC_PINS - 1})")
        return CallbackIrqLine(functools.partial(self.set_irq, irq))

    def _pit_edge(self) -> None:
        self.set_irq(layout.PIT_IRQ, True)
        self.set_irq(layout.PIT_IRQ, False)

    def _pic_output(self, level: bool) -> None:
        if level:
            for lapic in self.lapics:
                if lapic.accepts_pic_interrupts():
                    lapic.listener()

    # --- the machine's buses -------------------------------------------------------------
    def attach(self, buses) -> None:
        """Map the shared devices (not the local APICs: each vCPU sees its own)."""
        ports, lock = buses.ports, self.lock
        pic = _Locked(self.pic, lock)
        ports.insert(pic, layout.PIC_MASTER_PORT, layout.PIC_PORT_LENGTH, "pic-master")
        ports.insert(pic, layout.PIC_SLAVE_PORT, layout.PIC_PORT_LENGTH, "pic-slave",
                     offset=pic_registers.SLAVE_COMMAND)
        ports.insert(pic, layout.ELCR_PORT, layout.ELCR_PORT_LENGTH, "elcr", offset=pic_registers.ELCR_MASTER)
        ports.insert(_Locked(self.pit, lock), layout.PIT_PORT, layout.PIT_PORT_LENGTH, "pit")
        ports.insert(_Locked(self.speaker, lock), layout.PC_SPEAKER_PORT, 1, "speaker")
        buses.mmio.insert(_Locked(self.ioapic, lock), layout.IOAPIC_ADDR, layout.IOAPIC_SIZE, "ioapic")

    # --- what a vCPU asks (with `lock` held) ---------------------------------------------
    def _takes_pic_interrupt(self, cpu: int) -> bool:
        lapic = self.lapics[cpu]
        return lapic.extint_pending or (self.pic.output and lapic.accepts_pic_interrupts())

    def interrupt_pending(self, cpu: int) -> bool:
        """Would vCPU `cpu` take an external interrupt now, if its IF allowed?"""
        return self._takes_pic_interrupt(cpu) or self.lapics[cpu].pending_vector() is not None

    def acknowledge(self, cpu: int) -> int:
        """The interrupt-acknowledge cycle: the vector vCPU `cpu` takes, or -1 if none."""
        lapic = self.lapics[cpu]
        if self._takes_pic_interrupt(cpu):
            lapic.extint_pending = False
            return self.pic.acknowledge()  # the 8259A answers before the local APIC, as in KVM
        vector = lapic.acknowledge()
        return -1 if vector is None else vector

    def next_deadline(self, cpu: int) -> int | None:
        """clock() value of the next timer event vCPU `cpu` should wake up for, or None."""
        deadlines = [d for d in (self.pit.next_event(), self.lapics[cpu].timer_deadline()) if d is not None]
        return min(deadlines, default=None)

    def poll(self, cpu: int) -> None:
        """Fire the timer events that are due: the PIT's and vCPU `cpu`'s local APIC timer."""
        self.pit.poll()
        self.lapics[cpu].poll_timer()
