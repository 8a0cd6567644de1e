"""A 16550A UART: the guest's serial console (COM1).

Transmission is instantaneous: a byte written to THR goes straight to the `output` sink, so
THR and the transmitter are always empty (LSR.THRE and LSR.TEMT always read 1) and the THR-empty
interrupt is re-armed by every write. Reception comes from `enqueue_input` (the console thread).

Choices worth knowing:

* Input line vs FIFO. The guest sees a 16-byte receive FIFO, as on a real 16550A: in loopback
  the 17th byte overruns, so Linux's FIFO-size probe reports a 16550A and not a 64-byte variant.
  Host input, though, waits on the "line" behind the FIFO (up to `input_capacity` bytes) and
  moves up as the guest reads, so a pasted line is not lost to a guest that drains promptly.
  Input beyond the capacity is dropped and flagged as an overrun (LSR.OE). While the UART is in
  loopback its serial input is disconnected, as on hardware: host input is dropped.
* Character timeout. With FIFOs on and fewer bytes waiting than the trigger level, IIR reports
  the character-timeout interrupt at once instead of after four character times; drivers treat
  both the same way (read while LSR.DR).
* The interrupt line is not gated by MCR.OUT2 (as in QEMU): it is high whenever an interrupt
  enabled in IER is pending, in loopback too. Linux sets OUT2 anyway.
* Outside loopback the modem inputs read as CTS, DSR and DCD asserted (a cable with a
  ready peer), RI clear; their delta bits only change in loopback.
* Without FIFOs (FCR bit 0 clear) loopback holds one byte; host input still queues on the line.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Callable

from ..irq import IrqLine
from ._access import OPEN_BUS, read_bytes, write_bytes

# --- Register offsets ------------------------------------------------------------------
RBR = 0  # receive buffer (read, DLAB=0)
THR = 0  # transmit holding (write, DLAB=0)
DLL = 0  # divisor latch low (DLAB=1)
IER = 1  # interrupt enable (DLAB=0)
DLM = 1  # divisor latch high (DLAB=1)
IIR = 2  # interrupt identification (read)
FCR = 2  # FIFO control (write)
LCR = 3  # line control
MCR = 4  # modem control
LSR = 5  # line status
MSR = 6  # modem status
SCR = 7  # scratch
REGISTER_COUNT = 8

# --- Register bits ---------------------------------------------------------------------
IER_RDI = 0x01  # received data available
IER_THRI = 0x02  # transmitter holding register empty
IER_RLSI = 0x04  # receiver line status
IER_MSI = 0x08  # modem status
IER_MASK = 0x0F  # the upper nibble does not exist on a 16550A (Linux probes that)

IIR_NO_INT = 0x01
IIR_MSI = 0x00
IIR_THRI = 0x02
IIR_RDI = 0x04
IIR_RLSI = 0x06
IIR_RX_TIMEOUT = 0x0C
IIR_FIFO_ENABLED = 0xC0  # both bits: a 16550A with working FIFOs

FCR_ENABLE_FIFO = 0x01
FCR_CLEAR_RCVR = 0x02
FCR_TRIGGER_SHIFT = 6
RX_TRIGGER_LEVELS = (1, 4, 8, 14)

LCR_DLAB = 0x80

MCR_DTR = 0x01
MCR_RTS = 0x02
MCR_OUT1 = 0x04
MCR_OUT2 = 0x08
MCR_LOOP = 0x10
MCR_MASK = 0x1F  # bits 5-7 read as zero on a 16550A

LSR_DR = 0x01
LSR_OE = 0x02
LSR_THRE = 0x20
LSR_TEMT = 0x40

MSR_DCTS = 0x01
MSR_DDSR = 0x02
MSR_TERI = 0x04
MSR_DDCD = 0x08
MSR_CTS = 0x10
MSR_DSR = 0x20
MSR_RI = 0x40
MSR_DCD = 0x80
MSR_LINES_IDLE = MSR_CTS | MSR_DSR | MSR_DCD  # modem inputs outside loopback

FIFO_DEPTH = 16
DEFAULT_INPUT_CAPACITY = 4096
DEFAULT_DIVISOR = 0x000C  # 9600 baud from the PC's 1.8432 MHz clock

_SINGLE_BYTES = tuple(bytes((i,)) for i in range(256))  # no allocation per transmitted byte


class Uart16550:
    """The 16550A register file, its receive queue and its interrupt line.

    `output` receives each transmitted byte; it is called with the UART's lock held (so bytes
    leave in THR order) and must not call back into the UART.
    """

    def __init__(
        self,
        irq: IrqLine,
        output: Callable[[bytes], None],
        *,
        input_capacity: int = DEFAULT_INPUT_CAPACITY,
    ):
        self._irq = irq
        self._output = output
        self._input_capacity = input_capacity
        self._lock = threading.Lock()

        # --- State ---
        self._rx: deque[int] = deque()  # the FIFO's bytes, then those waiting on the line
        self._ier = 0
        self._lcr = 0
        self._mcr = 0
        self._scr = 0
        self._dll = DEFAULT_DIVISOR & 0xFF
        self._dlm = DEFAULT_DIVISOR >> 8
        self._fifo_enabled = False
        self._rx_trigger = 1
        self._thre_pending = False  # THR-empty interrupt armed and not yet acknowledged
        self._lsr_errors = 0  # sticky LSR error bits, cleared by reading LSR
        self._msr_deltas = 0  # MSR delta bits, cleared by reading MSR
        self._irq_level = False

        readers = {
            RBR: self._read_rbr,
            IER: self._read_ier,
            IIR: self._read_iir,
            LCR: self._read_lcr,
            MCR: self._read_mcr,
            LSR: self._read_lsr,
            MSR: self._read_msr,
            SCR: self._read_scr,
        }
        writers = {
            THR: self._write_thr,
            IER: self._write_ier,
            FCR: self._write_fcr,
            LCR: self._write_lcr,
            MCR: self._write_mcr,
            LSR: self._ignore,  # factory test only
            MSR: self._ignore,  # read-only
            SCR: self._write_scr,
        }
        self._readers = tuple(readers[offset] for offset in range(REGISTER_COUNT))
        self._writers = tuple(writers[offset] for offset in range(REGISTER_COUNT))

    # --- Bus interface -------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        with self._lock:
            if size == 1:
                value = self._read_byte(offset)
            else:
                value = read_bytes(self._read_byte, offset, size)
            self._update_irq()
        return value

    def write(self, offset: int, size: int, value: int) -> None:
        with self._lock:
            if size == 1:
                self._write_byte(offset, value & 0xFF)
            else:
                write_bytes(self._write_byte, offset, size, value)
            self._update_irq()

    def enqueue_input(self, data: bytes) -> int:
        """Bytes arriving from the host side; returns how many were accepted (the rest overran)."""
        with self._lock:
            if self._mcr & MCR_LOOP:
                accepted = 0
            else:
                accepted = min(len(data), self._input_capacity - len(self._rx))
                self._rx.extend(data[:accepted])
                if accepted < len(data):
                    self._lsr_errors |= LSR_OE
            self._update_irq()
        return accepted

    # --- Interrupts ----------------------------------------------------------------------

    def _interrupt_id(self) -> int:
        """The highest-priority pending interrupt enabled in IER, in IIR's encoding."""
        ier = self._ier
        if ier & IER_RLSI and self._lsr_errors:
            return IIR_RLSI
        if ier & IER_RDI and self._rx:
            if self._fifo_enabled and len(self._rx) < self._rx_trigger:
                return IIR_RX_TIMEOUT
            return IIR_RDI
        if ier & IER_THRI and self._thre_pending:
            return IIR_THRI
        if ier & IER_MSI and self._msr_deltas:
            return IIR_MSI
        return IIR_NO_INT

    def _update_irq(self) -> None:
        level = self._interrupt_id() != IIR_NO_INT
        if level != self._irq_level:
            self._irq_level = level
            self._irq.set_level(level)

    # --- Register dispatch ---------------------------------------------------------------

    def _read_byte(self, offset: int) -> int:
        return self._readers[offset]() if offset < REGISTER_COUNT else OPEN_BUS

    def _write_byte(self, offset: int, value: int) -> None:
        if offset < REGISTER_COUNT:
            self._writers[offset](value)

    # --- Read handlers -------------------------------------------------------------------

    def _read_rbr(self) -> int:
        if self._lcr & LCR_DLAB:
            return self._dll
        return self._rx.popleft() if self._rx else 0

    def _read_ier(self) -> int:
        return self._dlm if self._lcr & LCR_DLAB else self._ier

    def _read_iir(self) -> int:
        ident = self._interrupt_id()
        if ident == IIR_THRI:
            self._thre_pending = False  # reading IIR acknowledges THR-empty
        return (ident | IIR_FIFO_ENABLED) if self._fifo_enabled else ident

    def _read_lcr(self) -> int:
        return self._lcr

    def _read_mcr(self) -> int:
        return self._mcr

    def _read_lsr(self) -> int:
        value = LSR_THRE | LSR_TEMT | self._lsr_errors
        if self._rx:
            value |= LSR_DR
        self._lsr_errors = 0
        return value

    def _read_msr(self) -> int:
        value = self._modem_lines() | self._msr_deltas
        self._msr_deltas = 0
        return value

    def _read_scr(self) -> int:
        return self._scr

    # --- Write handlers ------------------------------------------------------------------

    def _write_thr(self, value: int) -> None:
        if self._lcr & LCR_DLAB:
            self._dll = value
            return
        if self._mcr & MCR_LOOP:
            self._loop_back(value)
        else:
            self._output(_SINGLE_BYTES[value])
        self._thre_pending = True  # sent at once: THR is empty again

    def _write_ier(self, value: int) -> None:
        if self._lcr & LCR_DLAB:
            self._dlm = value
            return
        value &= IER_MASK
        enabling_thri = value & IER_THRI and not self._ier & IER_THRI
        self._ier = value
        # THR is always empty, so enabling its interrupt raises it at once (Linux's 8250
        # driver tests that this happens after every 0 -> 1 transition of IER.THRI).
        if enabling_thri:
            self._thre_pending = True
        elif not value & IER_THRI:
            self._thre_pending = False

    def _write_fcr(self, value: int) -> None:
        enable = bool(value & FCR_ENABLE_FIFO)
        if enable != self._fifo_enabled or value & FCR_CLEAR_RCVR:
            self._rx.clear()
        self._fifo_enabled = enable
        self._rx_trigger = RX_TRIGGER_LEVELS[value >> FCR_TRIGGER_SHIFT]

    def _write_lcr(self, value: int) -> None:
        self._lcr = value

    def _write_mcr(self, value: int) -> None:
        before = self._modem_lines()
        self._mcr = value & MCR_MASK
        after = self._modem_lines()
        changed = before ^ after
        if changed:
            deltas = (changed >> 4) & (MSR_DCTS | MSR_DDSR | MSR_DDCD)
            if before & MSR_RI and not after & MSR_RI:
                deltas |= MSR_TERI  # RI reports its trailing edge only
            self._msr_deltas |= deltas

    def _write_scr(self, value: int) -> None:
        self._scr = value

    def _ignore(self, value: int) -> None:
        pass

    # --- Helpers -------------------------------------------------------------------------

    def _modem_lines(self) -> int:
        """MSR's upper nibble: the modem inputs, or in loopback MCR's outputs wired to them."""
        mcr = self._mcr
        if not mcr & MCR_LOOP:
            return MSR_LINES_IDLE
        return (
            (mcr & MCR_RTS) << 3  # RTS -> CTS
            | (mcr & MCR_DTR) << 5  # DTR -> DSR
            | (mcr & MCR_OUT1) << 4  # OUT1 -> RI
            | (mcr & MCR_OUT2) << 4  # OUT2 -> DCD
        )

    def _loop_back(self, value: int) -> None:
        depth = FIFO_DEPTH if self._fifo_enabled else 1
        if len(self._rx) >= depth:
            self._lsr_errors |= LSR_OE
        else:
            self._rx.append(value)
