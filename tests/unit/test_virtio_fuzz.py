"""Random rings against every device: whatever the guest writes, the device stays contained.

The examples and their properties are kvmpy.virtio.hostile's (the coverage-guided targets in
tests/fuzz play the same examples); here hypothesis draws 10,000 of them per device, in
seconds.  Set KVMPY_VIRTIO_FUZZ_EXAMPLES to run more (or fewer).
"""

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvmpy.virtio.hostile import DEVICE_MAKERS, HostileDriver
from kvmpy.virtio.testing import MockGuest

pytestmark = pytest.mark.virtio

EXAMPLES = int(os.environ.get("KVMPY_VIRTIO_FUZZ_EXAMPLES", "10000"))


@pytest.mark.parametrize("device", sorted(DEVICE_MAKERS))
def test_random_rings_never_escape(device, tmp_path):
    guest = MockGuest(DEVICE_MAKERS[device](str(tmp_path)))
    driver = HostileDriver(guest)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(st.binary(min_size=1, max_size=400))
    def run(data: bytes) -> None:
        driver.run(data)

    try:
        run()
    finally:
        guest.close()
