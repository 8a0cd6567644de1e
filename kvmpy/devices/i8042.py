"""A minimal i8042 PS/2 controller: enough for firmware-style probing and for reboot.

Linux reboots a PC by waiting for the controller's input buffer to drain (status bit 1) and
writing the pulse-reset command 0xFE to port 0x64; this device answers that by calling
`on_reset`, every time it is asked (the VMM stops the VM on the first call).

No keyboard or mouse is attached: bytes written to the data port for a device are dropped,
and the controller raises no interrupt, since its only output is replies to controller
commands, which drivers poll for. A Linux guest boots faster with `i8042.noaux i8042.nomux
i8042.dumbkbd` (or `i8042.nokbd`) on its command line, which skips waiting for a keyboard.
The input buffer is never full: commands complete as soon as they are written.
"""

from __future__ import annotations

import threading
from typing import Callable

from ._access import OPEN_BUS, read_bytes, write_bytes

# --- Register offsets (from port 0x60) --------------------------------------------------
DATA = 0  # port 0x60: output buffer (read), command parameter / device data (write)
COMMAND = 4  # port 0x64: status (read), controller command (write)

# --- Status register bits --------------------------------------------------------------
STATUS_OBF = 0x01  # output buffer full: a byte waits at the data port
STATUS_IBF = 0x02  # input buffer full (never: commands complete at once)
STATUS_SYS = 0x04  # system flag, mirrors the command byte's SYS bit
STATUS_CMD = 0x08  # the last write went to the command port
STATUS_UNLOCKED = 0x10  # keyboard not inhibited by the key lock

# --- Controller commands ---------------------------------------------------------------
CMD_READ_CTR = 0x20
CMD_WRITE_CTR = 0x60
CMD_AUX_DISABLE = 0xA7
CMD_AUX_ENABLE = 0xA8
CMD_SELF_TEST = 0xAA
CMD_KBD_TEST = 0xAB
CMD_KBD_DISABLE = 0xAD
CMD_KBD_ENABLE = 0xAE
CMD_READ_OUTPUT_PORT = 0xD0
CMD_WRITE_OUTPUT_PORT = 0xD1
CMD_PULSE_RESET = 0xFE  # pulse the CPU reset line (other 0xF0-0xFF pulses are ignored)

SELF_TEST_PASSED = 0x55
INTERFACE_TEST_PASSED = 0x00

# --- Command byte (CTR) bits -----------------------------------------------------------
CTR_KBD_INT = 0x01
CTR_SYS = 0x04
CTR_KBD_DISABLE = 0x10
CTR_AUX_DISABLE = 0x20
CTR_XLATE = 0x40
CTR_DEFAULT = CTR_KBD_INT | CTR_SYS | CTR_XLATE  # as a BIOS leaves it

# --- Output port bits ------------------------------------------------------------------
OUTPUT_PORT_RESET = 0x01  # CPU reset line, active low: writing 0 resets the machine
OUTPUT_PORT_A20 = 0x02
OUTPUT_PORT_DEFAULT = OUTPUT_PORT_RESET | OUTPUT_PORT_A20


class I8042:
    """The controller's status, command byte, output buffer and output port."""

    def __init__(self, on_reset: Callable[[], None]):
        self._on_reset = on_reset
        self._lock = threading.Lock()

        # --- State ---
        self._ctr = CTR_DEFAULT
        self._output_port = OUTPUT_PORT_DEFAULT
        self._out_byte = 0  # last byte placed in the output buffer
        self._out_full = False
        self._last_write_was_command = False
        self._awaiting = 0  # command waiting for its parameter on the data port, or 0
        self._reset_requested = False

    # --- Bus interface -------------------------------------------------------------------

    def read(self, offset: int, size: int) -> int:
        with self._lock:
            if size == 1:
                return self._read_byte(offset)
            return read_bytes(self._read_byte, offset, size)

    def write(self, offset: int, size: int, value: int) -> None:
        with self._lock:
            if size == 1:
                self._write_byte(offset, value & 0xFF)
            else:
                write_bytes(self._write_byte, offset, size, value)
            reset, self._reset_requested = self._reset_requested, False
        if reset:
            self._on_reset()  # outside the lock: the VMM may tear things down from here

    # --- Read/write handlers -------------------------------------------------------------

    def _read_byte(self, offset: int) -> int:
        if offset == COMMAND:
            return self._status()
        if offset == DATA:
            self._out_full = False
            return self._out_byte
        return OPEN_BUS

    def _write_byte(self, offset: int, value: int) -> None:
        if offset == COMMAND:
            self._last_write_was_command = True
            self._command(value)
        elif offset == DATA:
            self._last_write_was_command = False
            self._data(value)

    def _status(self) -> int:
        value = STATUS_UNLOCKED | (self._ctr & CTR_SYS)  # CTR_SYS and STATUS_SYS share bit 2
        if self._out_full:
            value |= STATUS_OBF
        if self._last_write_was_command:
            value |= STATUS_CMD
        return value

    def _command(self, command: int) -> None:
        self._awaiting = 0
        if command == CMD_READ_CTR:
            self._reply(self._ctr)
        elif command in (CMD_WRITE_CTR, CMD_WRITE_OUTPUT_PORT):
            self._awaiting = command
        elif command == CMD_READ_OUTPUT_PORT:
            self._reply(self._output_port)
        elif command == CMD_SELF_TEST:
            self._ctr |= CTR_SYS
            self._reply(SELF_TEST_PASSED)
        elif command == CMD_KBD_TEST:
            self._reply(INTERFACE_TEST_PASSED)
        elif command == CMD_KBD_DISABLE:
            self._ctr |= CTR_KBD_DISABLE
        elif command == CMD_KBD_ENABLE:
            self._ctr &= ~CTR_KBD_DISABLE
        elif command == CMD_AUX_DISABLE:
            self._ctr |= CTR_AUX_DISABLE
        elif command == CMD_AUX_ENABLE:
            self._ctr &= ~CTR_AUX_DISABLE
        elif command == CMD_PULSE_RESET:
            self._reset_requested = True
        # other commands are ignored

    def _data(self, value: int) -> None:
        awaiting, self._awaiting = self._awaiting, 0
        if awaiting == CMD_WRITE_CTR:
            self._ctr = value
        elif awaiting == CMD_WRITE_OUTPUT_PORT:
            self._output_port = value
            if not value & OUTPUT_PORT_RESET:
                self._reset_requested = True
        # otherwise the byte is for the keyboard, and there is none

    def _reply(self, value: int) -> None:
        self._out_byte = value
        self._out_full = True
