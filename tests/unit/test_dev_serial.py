"""The 16550A UART: registers, interrupt line and the probes Linux's 8250 driver runs."""

import threading

import pytest

from kvmpy.bus import Bus
from kvmpy.devices.serial import (
    DEFAULT_INPUT_CAPACITY,
    DLL,
    DLM,
    FCR,
    FIFO_DEPTH,
    IER,
    IER_MSI,
    IER_RDI,
    IER_RLSI,
    IER_THRI,
    IIR,
    LCR,
    LSR,
    LSR_DR,
    LSR_OE,
    LSR_TEMT,
    LSR_THRE,
    MCR,
    MSR,
    RBR,
    SCR,
    THR,
    Uart16550,
)
from kvmpy.irq import RecordingIrqLine
from kvmpy.layout import COM1_PORT, COM_PORT_LENGTH


class Rig:
    """A UART with a recording IRQ line and a list collecting its output."""

    def __init__(self, **kwargs):
        self.irq = RecordingIrqLine()
        self.sent: list[bytes] = []
        self.uart = Uart16550(self.irq, self.sent.append, **kwargs)

    def rd(self, offset: int) -> int:
        return self.uart.read(offset, 1)

    def wr(self, offset: int, value: int) -> None:
        self.uart.write(offset, 1, value)

    @property
    def output(self) -> bytes:
        return b"".join(self.sent)


@pytest.fixture
def rig() -> Rig:
    return Rig()


# --- Reset state and plain registers ------------------------------------------------------


def test_reset_state(rig):
    assert rig.rd(LSR) == LSR_THRE | LSR_TEMT
    assert rig.rd(IIR) == 0x01
    assert rig.rd(IER) == 0
    assert rig.rd(LCR) == 0
    assert rig.rd(MCR) == 0
    assert rig.rd(MSR) == 0xB0  # CTS, DSR, DCD asserted; no deltas
    assert rig.irq.history == []


def test_scratch_register_stores_any_byte(rig):
    for value in (0x00, 0xA5, 0x5A, 0xFF):
        rig.wr(SCR, value)
        assert rig.rd(SCR) == value


def test_ier_keeps_only_the_low_nibble(rig):
    rig.wr(IER, 0xFF)
    assert rig.rd(IER) == 0x0F


def test_mcr_keeps_only_the_low_five_bits(rig):
    rig.wr(MCR, 0xEB)
    assert rig.rd(MCR) == 0x0B


def test_lcr_reads_back(rig):
    rig.wr(LCR, 0x1B)
    assert rig.rd(LCR) == 0x1B


def test_writes_to_lsr_and_msr_change_nothing(rig):
    rig.wr(LSR, 0xFF)
    rig.wr(MSR, 0xFF)
    assert rig.rd(LSR) == LSR_THRE | LSR_TEMT
    assert rig.rd(MSR) == 0xB0


# --- Divisor latch ------------------------------------------------------------------------


def test_dlab_switches_offsets_0_and_1_to_the_divisor_latch(rig):
    rig.wr(IER, IER_RDI)
    rig.wr(LCR, 0x80)
    rig.wr(DLL, 0x01)
    rig.wr(DLM, 0x02)
    assert (rig.rd(DLL), rig.rd(DLM)) == (0x01, 0x02)
    rig.wr(LCR, 0x03)
    assert rig.rd(IER) == IER_RDI  # untouched by the DLM write
    rig.wr(LCR, 0x83)
    assert (rig.rd(DLL), rig.rd(DLM)) == (0x01, 0x02)


def test_dlab_write_to_offset_0_is_not_transmitted(rig):
    rig.wr(LCR, 0x80)
    rig.wr(THR, ord("x"))
    rig.wr(LCR, 0x03)
    assert rig.output == b""


def test_dlab_read_of_offset_0_does_not_consume_input(rig):
    rig.uart.enqueue_input(b"q")
    rig.wr(LCR, 0x80)
    rig.rd(RBR)
    rig.wr(LCR, 0x00)
    assert rig.rd(RBR) == ord("q")


def test_iir_and_fcr_ignore_dlab(rig):
    rig.wr(LCR, 0x80)
    rig.wr(FCR, 0x01)
    assert rig.rd(IIR) == 0xC1


# --- Transmit -----------------------------------------------------------------------------


def test_thr_bytes_reach_the_output_in_order(rig):
    for byte in b"Hello\r\n":
        rig.wr(THR, byte)
        assert rig.rd(LSR) & (LSR_THRE | LSR_TEMT) == LSR_THRE | LSR_TEMT
    assert rig.output == b"Hello\r\n"
    assert all(len(chunk) == 1 for chunk in rig.sent)


def test_transmit_without_ier_raises_nothing(rig):
    rig.wr(THR, 0x41)
    assert rig.irq.history == []


def test_enabling_thri_raises_the_line_and_reading_iir_acknowledges(rig):
    rig.wr(IER, IER_THRI)
    assert rig.irq.level is True
    assert rig.rd(IIR) == 0x02
    assert rig.irq.level is False
    assert rig.rd(IIR) == 0x01
    assert rig.irq.history == [True, False]


def test_thr_write_rearms_the_thr_empty_interrupt(rig):
    rig.wr(IER, IER_THRI)
    rig.rd(IIR)
    rig.wr(THR, 0x41)
    assert rig.irq.level is True
    assert rig.rd(IIR) == 0x02


def test_disabling_thri_lowers_the_line(rig):
    rig.wr(IER, IER_THRI)
    rig.wr(IER, 0)
    assert rig.irq.history == [True, False]
    rig.wr(IER, IER_RDI)  # another source enabled: THRE does not come back
    assert rig.irq.level is False


def test_lsr_read_does_not_acknowledge_thr_empty(rig):
    rig.wr(IER, IER_THRI)
    rig.rd(LSR)
    assert rig.rd(IIR) == 0x02


# --- Receive ------------------------------------------------------------------------------


def test_received_bytes_pop_from_rbr_in_order(rig):
    assert rig.uart.enqueue_input(b"hi") == 2
    assert rig.rd(LSR) & LSR_DR
    assert rig.rd(RBR) == ord("h")
    assert rig.rd(LSR) & LSR_DR
    assert rig.rd(RBR) == ord("i")
    assert not rig.rd(LSR) & LSR_DR
    assert rig.rd(RBR) == 0


def test_received_data_interrupt_follows_the_queue(rig):
    rig.wr(IER, IER_RDI)
    assert rig.irq.history == []
    rig.uart.enqueue_input(b"ab")
    assert rig.irq.level is True
    assert rig.rd(IIR) == 0x04
    rig.rd(RBR)
    assert rig.irq.level is True
    rig.rd(RBR)
    assert rig.irq.level is False
    assert rig.irq.history == [True, False]


def test_enabling_rdi_with_data_waiting_raises_the_line(rig):
    rig.uart.enqueue_input(b"z")
    assert rig.irq.history == []
    rig.wr(IER, IER_RDI)
    assert rig.irq.history == [True]


def test_fifo_trigger_level_selects_timeout_or_data_available(rig):
    rig.wr(FCR, 0xC1)  # FIFO on, trigger at 14 bytes
    rig.wr(IER, IER_RDI)
    rig.uart.enqueue_input(b"abc")
    assert rig.rd(IIR) == 0xCC  # below the trigger: character timeout
    rig.uart.enqueue_input(b"d" * 11)
    assert rig.rd(IIR) == 0xC4
    rig.rd(RBR)
    assert rig.rd(IIR) == 0xCC


def test_fcr_clear_receiver_empties_the_queue(rig):
    rig.wr(FCR, 0x01)
    rig.uart.enqueue_input(b"junk")
    rig.wr(FCR, 0x03)
    assert not rig.rd(LSR) & LSR_DR
    assert rig.rd(IIR) == 0xC1  # FIFOs stay enabled


def test_toggling_fifo_enable_empties_the_queue(rig):
    rig.uart.enqueue_input(b"junk")
    rig.wr(FCR, 0x01)
    assert not rig.rd(LSR) & LSR_DR
    rig.uart.enqueue_input(b"more")
    rig.wr(FCR, 0x00)
    assert not rig.rd(LSR) & LSR_DR
    assert rig.rd(IIR) == 0x01  # FIFO bits gone from IIR


def test_overrun_keeps_oldest_bytes_and_sets_oe_until_lsr_is_read():
    rig = Rig(input_capacity=4)
    assert rig.uart.enqueue_input(b"abcdef") == 4
    assert rig.rd(LSR) == LSR_DR | LSR_OE | LSR_THRE | LSR_TEMT
    assert rig.rd(LSR) & LSR_OE == 0
    assert bytes(rig.rd(RBR) for _ in range(4)) == b"abcd"
    assert not rig.rd(LSR) & LSR_DR


def test_default_input_capacity_bounds_the_queue(rig):
    data = bytes(range(256)) * (DEFAULT_INPUT_CAPACITY // 256 + 1)
    assert rig.uart.enqueue_input(data) == DEFAULT_INPUT_CAPACITY
    assert rig.rd(LSR) & LSR_OE
    assert rig.uart.enqueue_input(b"x") == 0


def test_overrun_raises_line_status_interrupt_until_lsr_is_read():
    rig = Rig(input_capacity=1)
    rig.wr(IER, IER_RLSI)
    rig.uart.enqueue_input(b"ab")
    assert rig.irq.level is True
    assert rig.rd(IIR) == 0x06
    rig.rd(LSR)
    assert rig.irq.level is False
    assert rig.rd(IIR) == 0x01


# --- Interrupt priorities -----------------------------------------------------------------


def test_interrupt_identification_priorities():
    rig = Rig(input_capacity=2)
    rig.wr(MCR, 0x10)  # loopback: inputs now follow MCR, making modem-status deltas
    rig.wr(MCR, 0x00)
    rig.uart.enqueue_input(b"abc")  # overruns: line status plus data
    rig.wr(IER, IER_RDI | IER_THRI | IER_RLSI | IER_MSI)
    assert rig.irq.level is True
    assert rig.rd(IIR) == 0x06  # line status first
    rig.rd(LSR)
    assert rig.rd(IIR) == 0x04  # then received data
    rig.rd(RBR)
    rig.rd(RBR)
    assert rig.rd(IIR) == 0x02  # then THR empty, acknowledged by this read
    assert rig.rd(IIR) == 0x00  # then modem status
    assert rig.irq.level is True
    assert rig.rd(MSR) & 0x0F
    assert rig.rd(IIR) == 0x01
    assert rig.irq.level is False
    assert rig.irq.history == [True, False]


# --- Modem control, modem status and loopback ---------------------------------------------


@pytest.mark.parametrize(
    "mcr, msr_lines",
    [
        (0x10, 0x00),
        (0x11, 0x20),  # DTR -> DSR
        (0x12, 0x10),  # RTS -> CTS
        (0x14, 0x40),  # OUT1 -> RI
        (0x18, 0x80),  # OUT2 -> DCD
        (0x1F, 0xF0),
    ],
)
def test_loopback_wires_mcr_outputs_to_msr_inputs(rig, mcr, msr_lines):
    rig.wr(MCR, mcr)
    assert rig.rd(MSR) & 0xF0 == msr_lines


def test_msr_deltas_report_changes_once(rig):
    rig.wr(MCR, 0x1B)  # loopback with DTR, RTS, OUT2: CTS/DSR/DCD stay asserted
    assert rig.rd(MSR) == 0xB0
    rig.wr(MCR, 0x10)  # drop them
    assert rig.rd(MSR) == 0x0B  # DCTS | DDSR | DDCD
    assert rig.rd(MSR) == 0x00


def test_ri_reports_only_its_trailing_edge(rig):
    rig.wr(MCR, 0x10)
    rig.rd(MSR)
    rig.wr(MCR, 0x14)  # RI rises
    assert rig.rd(MSR) == 0x40
    rig.wr(MCR, 0x10)  # RI falls
    assert rig.rd(MSR) == 0x04  # TERI


def test_modem_status_interrupt_until_msr_is_read(rig):
    rig.wr(IER, IER_MSI)
    rig.wr(MCR, 0x10)
    assert rig.irq.level is True
    assert rig.rd(IIR) == 0x00
    rig.rd(MSR)
    assert rig.irq.level is False


def test_loopback_transmit_is_received_not_output(rig):
    rig.wr(MCR, 0x10)
    rig.wr(THR, 0x5A)
    assert rig.output == b""
    assert rig.rd(LSR) & LSR_DR
    assert rig.rd(RBR) == 0x5A
    rig.wr(MCR, 0x00)
    rig.wr(THR, 0x5A)
    assert rig.output == b"\x5a"


def test_host_input_is_disconnected_in_loopback(rig):
    rig.wr(MCR, 0x10)
    assert rig.uart.enqueue_input(b"typed") == 0
    assert not rig.rd(LSR) & LSR_DR


def test_loopback_overruns_after_the_fifo_depth(rig):
    rig.wr(FCR, 0x01)
    rig.wr(MCR, 0x10)
    for value in range(FIFO_DEPTH + 1):
        rig.wr(THR, value)
    assert rig.rd(LSR) & LSR_OE
    received = []
    while rig.rd(LSR) & LSR_DR:
        received.append(rig.rd(RBR))
    assert received == list(range(FIFO_DEPTH))


def test_loopback_without_fifo_holds_one_byte(rig):
    rig.wr(MCR, 0x10)
    rig.wr(THR, 1)
    rig.wr(THR, 2)
    assert rig.rd(LSR) & LSR_OE
    assert rig.rd(RBR) == 1
    assert not rig.rd(LSR) & LSR_DR


# --- Wide accesses ------------------------------------------------------------------------


def test_wide_accesses_reach_consecutive_registers(rig):
    rig.uart.write(0, 2, 0x0241)  # THR 'A', IER THRI
    assert rig.output == b"A"
    assert rig.rd(IER) == IER_THRI
    assert rig.uart.read(5, 2) == (0xB0 << 8) | LSR_THRE | LSR_TEMT  # LSR, then MSR
    assert rig.uart.read(7, 2) >> 8 == 0xFF  # past the last register: open bus


def test_works_behind_the_port_bus(rig):
    bus = Bus("pio")
    bus.insert(rig.uart, COM1_PORT, COM_PORT_LENGTH, "com1")
    bus.write(COM1_PORT + SCR, 1, 0x42)
    assert bus.read(COM1_PORT + SCR, 1) == 0x42
    bus.write(COM1_PORT, 1, ord("k"))
    assert rig.output == b"k"


# --- Linux 8250 driver probes -------------------------------------------------------------


def linux_size_fifo(rig: Rig) -> int:
    """How Linux's 8250 driver counts FIFO bytes: 256 bytes sent in loopback, count received."""
    old_lcr = rig.rd(LCR)
    rig.wr(LCR, 0)
    old_fcr = rig.rd(FCR)  # really IIR, as in the driver
    old_mcr = rig.rd(MCR)
    rig.wr(FCR, 0x07)
    rig.wr(MCR, 0x10)
    rig.wr(LCR, 0x80)
    old_dl = rig.rd(DLL) | rig.rd(DLM) << 8
    rig.wr(DLL, 1)
    rig.wr(DLM, 0)
    rig.wr(LCR, 0x03)
    for value in range(256):
        rig.wr(THR, value)
    count = 0
    while rig.rd(LSR) & LSR_DR and count < 256:
        rig.rd(RBR)
        count += 1
    rig.wr(FCR, old_fcr)
    rig.wr(MCR, old_mcr)
    rig.wr(LCR, 0x80)
    rig.wr(DLL, old_dl & 0xFF)
    rig.wr(DLM, old_dl >> 8)
    rig.wr(LCR, old_lcr)
    return count


def linux_16550a_variant(rig: Rig) -> str:
    """The driver's search for 16550A look-alikes (CONFIG_SERIAL_8250_16550A_VARIANTS)."""
    rig.wr(LCR, 0x80)
    if rig.rd(IIR) == 0:
        return "EFR visible with DLAB (ST16C650V1)"
    rig.wr(LCR, 0xBF)
    if rig.rd(IIR) == 0:
        return "EFR visible with LCR=0xBF (ST16C650V2)"
    rig.wr(LCR, 0)
    status1 = rig.rd(MCR)
    rig.wr(LCR, 0xE0)
    status2 = rig.rd(2)
    if not (status1 ^ status2) & 0x10:
        rig.wr(LCR, 0)
        rig.wr(MCR, status1 ^ 0x10)
        rig.wr(LCR, 0xE0)
        status2 = rig.rd(2)
        rig.wr(LCR, 0)
        rig.wr(MCR, status1)
        if (status1 ^ status2) & 0x10:
            return "NS16550A"
    rig.wr(LCR, 0)
    rig.wr(FCR, 0x21)
    status1 = rig.rd(IIR) >> 5
    rig.wr(FCR, 0x01)
    rig.wr(LCR, 0x80)
    rig.wr(FCR, 0x21)
    status2 = rig.rd(IIR) >> 5
    rig.wr(FCR, 0x01)
    rig.wr(LCR, 0)
    if status1 == 6 and status2 == 7:
        return "16750"
    ier = rig.rd(IER)
    rig.wr(IER, ier & ~0x40)
    if not rig.rd(IER) & 0x40:
        rig.wr(IER, ier | 0x40)
        if rig.rd(IER) & 0x40:
            return "XScale"
    rig.wr(IER, ier)
    if linux_size_fifo(rig) == 64:
        return "U6_16550A"
    return "16550A"


def linux_autoconfig(rig: Rig, skip_loop_test: bool = False) -> str:
    """The 8250 driver's port autoconfiguration, returning the UART type it settles on."""
    scratch = rig.rd(IER)
    rig.wr(IER, 0)
    scratch2 = rig.rd(IER) & 0x0F
    rig.wr(IER, 0x0F)
    scratch3 = rig.rd(IER) & 0x0F
    rig.wr(IER, scratch)
    if scratch2 != 0 or scratch3 != 0x0F:
        return "absent (IER test)"
    save_mcr = rig.rd(MCR)
    save_lcr = rig.rd(LCR)
    if not skip_loop_test:
        rig.wr(MCR, 0x10 | 0x0A)
        status1 = rig.rd(MSR) & 0xF0
        rig.wr(MCR, save_mcr)
        if status1 != 0x90:
            return "absent (loopback test)"
    rig.wr(LCR, 0xBF)
    rig.wr(2, 0)  # EFR, which a 16550A takes as FCR
    rig.wr(LCR, 0)
    rig.wr(FCR, 0x01)
    kind = {0: "8250/16450", 1: "unknown", 2: "16550", 3: "16550A"}[rig.rd(IIR) >> 6]
    if kind == "16550A":
        kind = linux_16550a_variant(rig)
    rig.wr(LCR, save_lcr)
    rig.wr(MCR, save_mcr)
    rig.wr(FCR, 0x01)
    rig.wr(FCR, 0x07)
    rig.wr(FCR, 0x00)
    rig.rd(RBR)
    rig.wr(IER, 0)
    return kind


def test_linux_autoconfig_finds_a_16550a(rig):
    assert linux_autoconfig(rig) == "16550A"
    assert linux_autoconfig(rig, skip_loop_test=True) == "16550A"
    assert rig.output == b""  # loopback traffic never reaches the console
    assert rig.rd(MCR) == 0 and rig.rd(LCR) == 0 and rig.rd(IER) == 0
    assert rig.irq.level is False


def test_linux_fifo_size_probe_counts_16(rig):
    assert linux_size_fifo(rig) == FIFO_DEPTH == 16


def test_linux_startup_thre_tests_see_a_working_16550a(rig):
    """serial8250_do_startup: THRE must re-assert after every IER.THRI 0 -> 1 (else BUG_THRE),
    and an interrupt must appear as soon as THRI is enabled (else BUG_TXEN)."""
    rig.wr(FCR, 0x07)
    assert rig.rd(LSR) != 0xFF
    rig.wr(IER, IER_THRI)
    iir1 = rig.rd(IIR)
    rig.wr(IER, 0)
    rig.wr(IER, IER_THRI)
    iir2 = rig.rd(IIR)
    rig.wr(IER, 0)
    assert not iir1 & 0x01 and not iir2 & 0x01
    rig.wr(IER, IER_THRI)
    lsr = rig.rd(LSR)
    iir = rig.rd(IIR)
    rig.wr(IER, 0)
    assert lsr & LSR_TEMT and not iir & 0x01
    assert rig.irq.level is False


def test_linux_console_write_with_ier_saved_and_restored(rig):
    """The console path masks IER, polls LSR per byte, then restores IER (THRI re-fires)."""
    rig.wr(IER, IER_RDI | IER_THRI)
    rig.rd(IIR)  # acknowledged THRE
    rig.wr(IER, 0)
    for byte in b"ok\r\n":
        assert rig.rd(LSR) & LSR_THRE
        rig.wr(THR, byte)
    assert rig.irq.level is False
    rig.wr(IER, IER_RDI | IER_THRI)
    assert rig.irq.level is True
    assert rig.output == b"ok\r\n"


# --- Threads ------------------------------------------------------------------------------


def test_concurrent_vcpus_and_console_lose_nothing():
    rig = Rig(input_capacity=1 << 20)
    rounds = 2000
    start = threading.Barrier(3)

    def vcpu(byte: int) -> None:
        start.wait()
        for _ in range(rounds):
            rig.wr(THR, byte)
            rig.rd(LSR)

    def console() -> None:
        start.wait()
        for _ in range(rounds):
            rig.uart.enqueue_input(b"i")

    threads = [threading.Thread(target=vcpu, args=(b,)) for b in b"ab"]
    threads.append(threading.Thread(target=console))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(rig.output) == sorted(b"a" * rounds + b"b" * rounds)
    received = 0
    while rig.rd(LSR) & LSR_DR:
        rig.rd(RBR)
        received += 1
    assert received == rounds
