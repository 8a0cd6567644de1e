"""A local APIC in xAPIC mode: one per vCPU, its registers in the 4 KiB page at IA32_APIC_BASE.

It holds the vCPU's pending (IRR) and in-service (ISR) vectors and decides, with the task
priority, which one the CPU may take next (`pending_vector`, `acknowledge`, EOI). It sends
IPIs through the ICR onto the APIC bus, and receives fixed interrupts, NMI, INIT, STARTUP
and ExtINT from it. Its timer counts down at `bus_hz` divided by the divide configuration,
in one-shot or periodic mode; like the PIT it is computed from the host clock, and `poll_timer`
fires the expiries that have come due. Periodic expiries the vCPU could not take in time (the
interpreter stalled, or the host did) are not dropped but delivered late, one at a time as the
previous one leaves IRR (up to MAX_TIMER_BACKLOG): a kernel that counts its ticks, as Linux's
periodic tick does for jiffies, then keeps time with the TSC, and its clocksource watchdog
does not declare the TSC unstable.

NMI, INIT and STARTUP are recorded (`nmi_pending`, `init_pending`, `startup_vector`) for the
vCPU's runner to act on; `listener()` is called whenever something arrives that the vCPU
must look at. BSP's LINT0 comes out of reset in ExtINT mode, unmasked (virtual-wire mode, as
KVM sets it up), so the 8259A reaches the BSP until the guest reprograms LINT0.

Not modelled: x2APIC, the TSC-deadline timer mode, error reporting in ESR (reads 0),
the thermal/performance/CMCI sources (their LVT entries are plain registers), arbitration
priority, directed EOI.
"""

from __future__ import annotations

from collections.abc import Callable

from . import apic_bus
from .apic_bus import ApicBus

NS_PER_S = 1_000_000_000

# --- Register offsets ----------------------------------------------------------------------
ID = 0x20
VERSION = 0x30
TPR = 0x80
APR = 0x90
PPR = 0xA0
EOI = 0xB0
LDR = 0xD0
DFR = 0xE0
SVR = 0xF0
ISR = 0x100  # eight 32-bit registers, 16 bytes apart
TMR = 0x180
IRR = 0x200
ESR = 0x280
LVT_CMCI = 0x2F0
ICR_LOW = 0x300
ICR_HIGH = 0x310
LVT_TIMER = 0x320
LVT_THERMAL = 0x330
LVT_PERF = 0x340
LVT_LINT0 = 0x350
LVT_LINT1 = 0x360
LVT_ERROR = 0x370
TIMER_INITIAL = 0x380
TIMER_CURRENT = 0x390
TIMER_DIVIDE = 0x3E0
BITMAP_REGISTERS = 8
REGISTER_STRIDE = 0x10
LVT_REGISTERS = (LVT_CMCI, LVT_TIMER, LVT_THERMAL, LVT_PERF, LVT_LINT0, LVT_LINT1, LVT_ERROR)

# --- Register contents ---------------------------------------------------------------------
APIC_VERSION = 0x14 | (len(LVT_REGISTERS) - 2) << 16  # integrated APIC; max LVT entry 5 (as KVM)
ID_SHIFT = 24
LDR_MASK = 0xFF00_0000
DFR_RESERVED = 0x0FFF_FFFF  # read as ones
DFR_FLAT = 0xF
SVR_RESET = 0xFF
SVR_ENABLE = 0x100
SVR_WRITABLE = 0x13FF  # spurious vector, enable, focus check, EOI-broadcast suppression
LVT_VECTOR = 0xFF
LVT_DELIVERY_MODE_SHIFT = 8
LVT_MASKED = 1 << 16
LVT_TIMER_PERIODIC = 1 << 17
LVT_WRITABLE = {  # vector, delivery mode, polarity, trigger, mask, timer mode (per entry)
    LVT_CMCI: 0x107FF, LVT_TIMER: 0x300FF, LVT_THERMAL: 0x107FF, LVT_PERF: 0x107FF,
    LVT_LINT0: 0x1A7FF, LVT_LINT1: 0x1A7FF, LVT_ERROR: 0x100FF,
}
ICR_LOW_WRITABLE = 0xCCFFF  # vector, delivery mode, destination mode, level, trigger, shorthand
ICR_VECTOR = 0xFF
ICR_DELIVERY_MODE_SHIFT = 8
ICR_LOGICAL = 1 << 11
ICR_ASSERT = 1 << 14
ICR_LEVEL_TRIGGERED = 1 << 15
ICR_SHORTHAND_SHIFT = 18
ICR_DESTINATION_SHIFT = 24
DIVIDE_WRITABLE = 0xB
FIRST_VALID_VECTOR = 16  # vectors 0-15 are exceptions: a message carrying one is dropped
MAX_TIMER_BACKLOG = 1000  # late periodic expiries kept for delivery; beyond that they are lost

# --- IA32_APIC_BASE ------------------------------------------------------------------------
APIC_BASE_BSP = 1 << 8
APIC_BASE_ENABLE = 1 << 11
APIC_BASE_ADDRESS = ~0xFFF


def _highest(bits: int) -> int | None:
    return bits.bit_length() - 1 if bits else None


def _priority_class(vector: int | None) -> int:
    return 0 if vector is None else vector & 0xF0


class LocalApic:
    """The local APIC of vCPU `apic_id`; `base_msr()` reads that vCPU's IA32_APIC_BASE."""

    def __init__(self, apic_id: int, bus_hz: int, clock: Callable[[], int], bus: ApicBus, bsp: bool = False,
                 base_msr: Callable[[], int] | None = None):
        self.apic_id = apic_id
        self.bus_hz = bus_hz
        self.bsp = bsp
        self._clock = clock
        self._bus = bus
        self.base_msr = base_msr or (lambda: APIC_BASE_ENABLE | (APIC_BASE_BSP if bsp else 0))
        self.listener: Callable[[], None] = lambda: None
        self.nmi_pending = False
        self.init_pending = False
        self.startup_vector: int | None = None
        self.reset()
        bus.attach(self)

    def reset(self) -> None:
        """Power-on and INIT state (the APIC ID survives INIT)."""
        self.tpr = 0
        self.ldr = 0
        self.dfr = 0xFFFF_FFFF
        self.svr = SVR_RESET
        self.irr = self.isr = self.tmr = 0  # 256-bit vector bitmaps
        self.icr_low = self.icr_high = 0
        self.lvt = {register: LVT_MASKED for register in LVT_REGISTERS}
        if self.bsp:
            self.lvt[LVT_LINT0] = apic_bus.EXTINT << LVT_DELIVERY_MODE_SHIFT
        self.extint_pending = False  # an ExtINT message: the 8259A supplies the vector
        self.timer_initial = 0
        self.timer_divide = 0
        self.timer_start = 0  # clock() when the initial count was written
        self.timer_fired = 0  # expiries since then, already fired
        self.timer_backlog = 0  # fired expiries not yet delivered to IRR

    # --- state ---------------------------------------------------------------------------
    @property
    def hardware_enabled(self) -> bool:
        return bool(self.base_msr() & APIC_BASE_ENABLE)

    @property
    def software_enabled(self) -> bool:
        return bool(self.svr & SVR_ENABLE)

    @property
    def ppr(self) -> int:
        in_service = _priority_class(_highest(self.isr))
        return self.tpr if (self.tpr & 0xF0) >= in_service else in_service

    def accepts_pic_interrupts(self) -> bool:
        """Does the 8259A's output reach this CPU (disabled APIC, or LINT0 in ExtINT mode)?"""
        lint0 = self.lvt[LVT_LINT0]
        extint = (lint0 >> LVT_DELIVERY_MODE_SHIFT) & 7 == apic_bus.EXTINT and not lint0 & LVT_MASKED
        return not self.hardware_enabled or extint

    def matches(self, destination: int, logical: bool) -> bool:
        if not logical:
            return destination in (apic_bus.BROADCAST, self.apic_id)
        ldr = self.ldr >> ID_SHIFT
        if self.dfr >> 28 == DFR_FLAT:
            return bool(ldr & destination)
        return destination >> 4 in (ldr >> 4, 0xF) and bool(ldr & destination & 0xF)

    # --- interrupts ----------------------------------------------------------------------
    def pending_vector(self) -> int | None:
        """The vector the CPU would take now, or None."""
        vector = _highest(self.irr)
        if vector is None or not self.hardware_enabled or (vector & 0xF0) <= (self.ppr & 0xF0):
            return None
        return vector

    def acknowledge(self) -> int | None:
        """The CPU takes the pending vector: IRR to ISR."""
        vector = self.pending_vector()
        if vector is not None:
            self.irr &= ~(1 << vector)
            self.isr |= 1 << vector
        return vector

    def end_of_interrupt(self) -> None:
        vector = _highest(self.isr)
        if vector is None:
            return
        self.isr &= ~(1 << vector)
        if self.tmr >> vector & 1:
            self._bus.end_of_interrupt(vector)

    def accept_fixed(self, vector: int, level_triggered: bool = False) -> None:
        if not self.software_enabled or vector < FIRST_VALID_VECTOR:
            return  # a disabled APIC drops fixed interrupts (as KVM's does)
        bit = 1 << vector
        self.irr |= bit
        self.tmr = self.tmr | bit if level_triggered else self.tmr & ~bit
        self.listener()

    def accept_nmi(self) -> None:
        self.nmi_pending = True
        self.listener()

    def accept_init(self) -> None:
        self.init_pending = True
        self.listener()

    def accept_startup(self, vector: int) -> None:
        self.startup_vector = vector
        self.listener()

    def accept_extint(self) -> None:
        self.extint_pending = True
        self.listener()

    # --- the timer -----------------------------------------------------------------------
    @property
    def timer_divisor(self) -> int:
        code = (self.timer_divide & 3) | (self.timer_divide & 8) >> 1
        return 1 << ((code + 1) & 7)

    def _timer_period_ns(self) -> int:
        return -(-self.timer_initial * self.timer_divisor * NS_PER_S // self.bus_hz)

    @property
    def timer_periodic(self) -> bool:
        return bool(self.lvt[LVT_TIMER] & LVT_TIMER_PERIODIC)

    def timer_deadline(self) -> int | None:
        """clock() value of the next expiry, or None if the timer is stopped."""
        if not self.timer_initial or (self.timer_fired and not self.timer_periodic):
            return None
        return self.timer_start + (self.timer_fired + 1) * self._timer_period_ns()

    def poll_timer(self) -> None:
        """Fire the expiries that are due, and deliver the next late one if IRR has room."""
        deadline = self.timer_deadline()
        now = self._clock()
        if deadline is not None and now >= deadline:
            fired = (now - self.timer_start) // self._timer_period_ns() if self.timer_periodic else 1
            self.timer_backlog = min(MAX_TIMER_BACKLOG, self.timer_backlog + fired - self.timer_fired)
            self.timer_fired = fired
        timer = self.lvt[LVT_TIMER]
        if timer & LVT_MASKED:
            self.timer_backlog = 0
        elif self.timer_backlog and not self.irr >> (timer & LVT_VECTOR) & 1:
            self.timer_backlog -= 1
            self.accept_fixed(timer & LVT_VECTOR)

    def timer_current(self) -> int:
        if not self.timer_initial:
            return 0
        counts = (self._clock() - self.timer_start) * self.bus_hz // (self.timer_divisor * NS_PER_S)
        if self.timer_periodic:
            return self.timer_initial - counts % self.timer_initial
        return max(0, self.timer_initial - counts)

    # --- registers -----------------------------------------------------------------------
    def read(self, offset: int, size: int) -> int:
        value = self._read_register(offset & ~0xF)
        return (value >> (8 * (offset & 3))) & ((1 << (8 * size)) - 1)

    def _read_register(self, register: int) -> int:
        if register == TIMER_CURRENT:
            return self.timer_current()
        if ISR <= register < IRR + BITMAP_REGISTERS * REGISTER_STRIDE:
            bitmap = {ISR: self.isr, TMR: self.tmr, IRR: self.irr}[register & ~0x7F]
            return (bitmap >> (32 * ((register & 0x7F) // REGISTER_STRIDE))) & 0xFFFF_FFFF
        if register in self.lvt:
            return self.lvt[register]
        return {
            ID: self.apic_id << ID_SHIFT, VERSION: APIC_VERSION, TPR: self.tpr, PPR: self.ppr,
            LDR: self.ldr, DFR: self.dfr, SVR: self.svr, ICR_LOW: self.icr_low, ICR_HIGH: self.icr_high,
            TIMER_INITIAL: self.timer_initial, TIMER_DIVIDE: self.timer_divide,
        }.get(register, 0)

    def write(self, offset: int, size: int, value: int) -> None:
        register = offset & ~0xF
        if register == TPR:
            self.tpr = value & 0xFF
        elif register == EOI:
            self.end_of_interrupt()
        elif register == ID:
            self.apic_id = value >> ID_SHIFT
        elif register == LDR:
            self.ldr = value & LDR_MASK
        elif register == DFR:
            self.dfr = value | DFR_RESERVED
        elif register == SVR:
            self.svr = value & SVR_WRITABLE
            if not self.software_enabled:
                for lvt in self.lvt:
                    self.lvt[lvt] |= LVT_MASKED
        elif register in self.lvt:
            self.lvt[register] = value & LVT_WRITABLE[register] | (0 if self.software_enabled else LVT_MASKED)
        elif register == ICR_HIGH:
            self.icr_high = value & (0xFF << ICR_DESTINATION_SHIFT)
        elif register == ICR_LOW:
            self.icr_low = value & ICR_LOW_WRITABLE
            self._send_ipi()
        elif register == TIMER_INITIAL:
            self.timer_initial = value & 0xFFFF_FFFF
            self.timer_start, self.timer_fired, self.timer_backlog = self._clock(), 0, 0
        elif register == TIMER_DIVIDE:
            self.timer_divide = value & DIVIDE_WRITABLE
        # ESR writes re-arm error reporting (nothing to report); read-only registers ignore writes
        self.listener()  # TPR, EOI or LINT0 may have made an interrupt deliverable

    def _send_ipi(self) -> None:
        low = self.icr_low
        mode = (low >> ICR_DELIVERY_MODE_SHIFT) & 7
        level_triggered = bool(low & ICR_LEVEL_TRIGGERED)
        if mode == apic_bus.INIT and level_triggered and not low & ICR_ASSERT:
            return  # INIT level de-assert: only synchronised arbitration IDs on old APICs
        self._bus.send(mode, low & ICR_VECTOR, self.icr_high >> ICR_DESTINATION_SHIFT, bool(low & ICR_LOGICAL),
                       level_triggered, (low >> ICR_SHORTHAND_SHIFT) & 3, source=self)
