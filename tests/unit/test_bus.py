import pytest

from kvmpy.bus import Bus
from kvmpy.errors import ConfigError


class Recorder:
    def __init__(self, value=0):
        self.value = value
        self.accesses = []

    def read(self, offset, size):
        self.accesses.append(("r", offset, size))
        return self.value

    def write(self, offset, size, value):
        self.accesses.append(("w", offset, size, value))


def test_devices_receive_offsets_not_addresses():
    bus = Bus("port")
    uart = Recorder(0x60)
    bus.insert(uart, 0x3F8, 8, "com1")
    assert bus.read(0x3FD, 1) == 0x60
    assert bus.write(0x3F8, 1, 0x41)
    assert uart.accesses == [("r", 5, 1), ("w", 0, 1, 0x41)]


def test_unclaimed_addresses_are_reported_not_raised():
    bus = Bus("mmio")
    bus.insert(Recorder(), 0x1000, 0x100)
    assert bus.read(0xFFF, 4) is None
    assert bus.read(0x1100, 4) is None
    assert bus.write(0x2000, 4, 1) is False


def test_lookup_picks_the_right_one_of_many():
    bus = Bus("mmio")
    devices = [Recorder(i) for i in range(10)]
    for i, device in reversed(list(enumerate(devices))):
        bus.insert(device, 0x1000 * (i + 1), 0x1000)
    for i in range(10):
        assert bus.read(0x1000 * (i + 1) + 0xFFF, 1) == i


@pytest.mark.parametrize("base,length", [(0x10, 0x10), (0x0, 0x11), (0x1F, 1), (0x5, 0x100)])
def test_overlaps_are_refused(base, length):
    bus = Bus("port")
    bus.insert(Recorder(), 0x10, 0x10)
    with pytest.raises(ConfigError):
        bus.insert(Recorder(), base, length)


def test_adjacent_ranges_are_fine_and_remove_detaches():
    bus = Bus("port")
    first, second = Recorder(1), Recorder(2)
    bus.insert(first, 0x10, 0x10)
    bus.insert(second, 0x20, 0x10)
    assert bus.remove(0x10) is first
    assert bus.read(0x10, 1) is None and bus.read(0x20, 1) == 2
    with pytest.raises(ConfigError):
        bus.remove(0x10)


def test_empty_range_is_refused():
    with pytest.raises(ConfigError):
        Bus("port").insert(Recorder(), 0x10, 0)


def test_a_device_split_over_two_ranges_sees_its_own_offsets():
    bus = Bus("port")
    controller = Recorder(7)
    bus.insert(controller, 0x60, 1, "data")
    bus.insert(controller, 0x64, 1, "command", offset=4)
    bus.write(0x64, 1, 0xFE)
    assert bus.read(0x60, 1) == 7 and bus.read(0x61, 1) is None
    assert controller.accesses == [("w", 4, 1, 0xFE), ("r", 0, 1)]
