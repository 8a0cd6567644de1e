import pytest

from kvmpy.cli import parse_size
from kvmpy.errors import ConfigError


@pytest.mark.parametrize(
    "text,size",
    [("256", 256 << 20), ("256M", 256 << 20), ("1G", 1 << 30), ("512K", 512 << 10), ("2GiB", 2 << 30), ("64mb", 64 << 20),
     ("1T", 1 << 40)],
)
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["0", "0M", "-1", "lots", "1P", ""])
def test_bad_sizes(text):
    with pytest.raises(ConfigError):
        parse_size(text)
