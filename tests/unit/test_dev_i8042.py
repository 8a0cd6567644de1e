"""The i8042 controller: status, controller commands, and the reset Linux reboots with."""

import queue
import threading

import pytest

from kvmpy.bus import Bus
from kvmpy.devices.i8042 import (
    COMMAND,
    CTR_AUX_DISABLE,
    CTR_DEFAULT,
    CTR_KBD_DISABLE,
    DATA,
    I8042,
    STATUS_CMD,
    STATUS_IBF,
    STATUS_OBF,
    STATUS_SYS,
    STATUS_UNLOCKED,
)
from kvmpy.layout import I8042_COMMAND_PORT, I8042_DATA_PORT


class Rig:
    def __init__(self):
        self.resets = 0
        self.dev = I8042(on_reset=self._reset)

    def _reset(self) -> None:
        self.resets += 1

    def status(self) -> int:
        return self.dev.read(COMMAND, 1)

    def command(self, value: int) -> None:
        self.dev.write(COMMAND, 1, value)

    def data_out(self, value: int) -> None:
        self.dev.write(DATA, 1, value)

    def data_in(self) -> int:
        return self.dev.read(DATA, 1)


@pytest.fixture
def rig() -> Rig:
    return Rig()


def test_initial_status_is_idle_with_system_flag(rig):
    status = rig.status()
    assert status & (STATUS_OBF | STATUS_IBF) == 0
    assert status & STATUS_SYS
    assert status & STATUS_UNLOCKED


def test_self_test_replies_0x55_through_the_output_buffer(rig):
    rig.command(0xAA)
    assert rig.status() & STATUS_OBF
    assert rig.data_in() == 0x55
    assert not rig.status() & STATUS_OBF


def test_interface_test_replies_0x00(rig):
    rig.command(0xAB)
    assert rig.status() & STATUS_OBF
    assert rig.data_in() == 0x00


def test_command_byte_read_and_write(rig):
    rig.command(0x20)
    assert rig.data_in() == CTR_DEFAULT
    rig.command(0x60)
    rig.data_out(0x47)
    rig.command(0x20)
    assert rig.data_in() == 0x47


def test_status_system_flag_mirrors_the_command_byte(rig):
    rig.command(0x60)
    rig.data_out(0x00)
    assert not rig.status() & STATUS_SYS
    rig.command(0xAA)  # a passed self-test sets it again
    rig.data_in()
    assert rig.status() & STATUS_SYS


@pytest.mark.parametrize(
    "disable, enable, bit",
    [(0xAD, 0xAE, CTR_KBD_DISABLE), (0xA7, 0xA8, CTR_AUX_DISABLE)],
)
def test_disable_and_enable_ports_update_the_command_byte(rig, disable, enable, bit):
    rig.command(disable)
    rig.command(0x20)
    assert rig.data_in() & bit
    rig.command(enable)
    rig.command(0x20)
    assert not rig.data_in() & bit


def test_output_port_read_and_write(rig):
    rig.command(0xD0)
    assert rig.data_in() & 0x03 == 0x03  # not in reset, A20 on
    rig.command(0xD1)
    rig.data_out(0xDF)
    rig.command(0xD0)
    assert rig.data_in() == 0xDF
    assert rig.resets == 0


def test_output_port_write_with_reset_line_low_resets(rig):
    rig.command(0xD1)
    rig.data_out(0xDE)
    assert rig.resets == 1


def test_command_flag_tracks_the_last_port_written(rig):
    rig.command(0xAD)
    assert rig.status() & STATUS_CMD
    rig.data_out(0xF4)  # meant for a keyboard that is not there
    assert not rig.status() & STATUS_CMD
    assert not rig.status() & STATUS_OBF


def test_a_new_command_cancels_a_pending_parameter(rig):
    rig.command(0x60)
    rig.command(0xAE)
    rig.data_out(0x00)  # no longer the command byte
    rig.command(0x20)
    assert rig.data_in() == CTR_DEFAULT


def test_a20_gate_sequence_does_not_reset(rig):
    """arch/x86/boot/a20.c: D1, DF, then the null pulse command FF."""
    for port, value in ((COMMAND, 0xD1), (DATA, 0xDF), (COMMAND, 0xFF)):
        assert not rig.status() & STATUS_IBF
        rig.dev.write(port, 1, value)
    assert rig.resets == 0


def test_linux_reboot_sequence_reaches_on_reset():
    """arch/x86/kernel/reboot.c (BOOT_KBD): wait for IBF clear on 0x64, write 0xFE to 0x64."""
    stopped = threading.Event()
    bus = Bus("pio")
    controller = I8042(on_reset=stopped.set)
    bus.insert(controller, I8042_DATA_PORT, 1, "i8042-data")
    bus.insert(controller, I8042_COMMAND_PORT, 1, "i8042-command", offset=I8042_COMMAND_PORT - I8042_DATA_PORT)
    for _attempt in range(10):
        for _ in range(0x10000):  # kb_wait()
            if not bus.read(I8042_COMMAND_PORT, 1) & 0x02:
                break
        else:
            pytest.fail("input buffer never drained")
        assert not stopped.is_set()
        bus.write(I8042_COMMAND_PORT, 1, 0xFE)
        if stopped.is_set():  # the VMM would have stopped the vCPU here
            break
    assert stopped.is_set()
    assert _attempt == 0


def test_every_reset_pulse_is_reported(rig):
    rig.command(0xFE)
    rig.command(0xFE)
    assert rig.resets == 2


def test_on_reset_runs_without_the_device_lock_held():
    replies: queue.Queue[int] = queue.Queue()

    def on_reset() -> None:
        reader = threading.Thread(target=lambda: replies.put(dev.read(COMMAND, 1)))
        reader.start()
        replies.put(replies.get(timeout=5))  # raises queue.Empty if the lock were held
        reader.join()

    dev = I8042(on_reset=on_reset)
    dev.write(COMMAND, 1, 0xFE)
    assert replies.get_nowait() & STATUS_CMD


def test_undecoded_offsets_read_as_open_bus(rig):
    assert rig.dev.read(1, 1) == 0xFF
    rig.dev.write(2, 1, 0xFE)
    assert rig.resets == 0
