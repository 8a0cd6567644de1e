"""The 16550A UART's register file (THR/RBR, IER, IIR/FCR, LCR, MCR, LSR, MSR, SCR, the
divisor latch) with host input arriving between the guest's accesses."""

from kvmpy.devices.serial import Uart16550
from kvmpy.irq import RecordingIrqLine
from kvmpy.layout import COM_PORT_LENGTH

from ._support import Input, discard, register_ops

HOST_INPUT = COM_PORT_LENGTH  # a pseudo-register: the host types the value's low byte


def one_input(data: bytes) -> None:
    irq = RecordingIrqLine()
    uart = Uart16550(irq, discard, input_capacity=16)
    for is_write, offset, size, value in register_ops(Input(data), COM_PORT_LENGTH + 1, (1, 2, 4)):
        if offset == HOST_INPUT:
            uart.enqueue_input(bytes([value & 0xFF]) * (1 + (value >> 8 & 0x1F)))
        elif is_write:
            uart.write(offset, size, value & ((1 << 8 * size) - 1))
        else:
            assert 0 <= uart.read(offset, size) < 1 << 8 * size
    assert irq.level in (False, True)
