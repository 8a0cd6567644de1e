"""The serial console's terminal side: raw mode, escapes, pipes and the output sink."""

import io
import os
import queue
import termios
import threading

import pytest

from kvmpy.console import HELP_TEXT, Console, output_sink

TIMEOUT = 5.0


class Inbox:
    """Collects what the console forwards, so tests can wait for it without sleeping."""

    def __init__(self):
        self.chunks: queue.Queue[bytes] = queue.Queue()
        self.quit = threading.Event()

    def on_input(self, data: bytes) -> None:
        self.chunks.put(data)

    def on_quit(self) -> None:
        self.quit.set()

    def take(self, count: int) -> bytes:
        """Exactly `count` forwarded bytes (however they were chunked)."""
        data = b""
        while len(data) < count:
            data += self.chunks.get(timeout=TIMEOUT)
        assert len(data) == count, data
        return data


@pytest.fixture
def pty():
    master, slave = os.openpty()
    yield master, slave
    for fd in (master, slave):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


def console_on(fd: int, inbox: Inbox, **kwargs) -> Console:
    return Console(inbox.on_input, inbox.on_quit, fd=fd, **kwargs)


# --- Terminal mode ------------------------------------------------------------------------


def test_raw_mode_while_open_and_restored_after(pty, inbox):
    master, slave = pty
    original = termios.tcgetattr(slave)
    with console_on(slave, inbox):
        iflag, oflag, _cflag, lflag, _, _, cc = termios.tcgetattr(slave)
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
        assert not iflag & (termios.ICRNL | termios.IXON)
        assert oflag & termios.OPOST  # kept, so VMM log lines stay readable
        assert cc[termios.VMIN] == 1
    assert termios.tcgetattr(slave) == original


def test_mode_restored_when_the_body_raises(pty, inbox):
    master, slave = pty
    original = termios.tcgetattr(slave)
    with pytest.raises(RuntimeError):
        with console_on(slave, inbox):
            assert termios.tcgetattr(slave) != original
            raise RuntimeError("vcpu failed")
    assert termios.tcgetattr(slave) == original


def test_close_stops_an_idle_reader(pty, inbox):
    master, slave = pty
    console = console_on(slave, inbox)
    console.start()
    assert not console.wait(0)
    console.close()
    assert console.wait(TIMEOUT)
    console.close()  # idempotent


# --- Forwarding and escapes on a terminal -------------------------------------------------


def test_keys_are_forwarded_raw(pty, inbox):
    master, slave = pty
    with console_on(slave, inbox):
        os.write(master, b"ls\r\x03\x04")  # Ctrl-C and Ctrl-D are for the guest
        assert inbox.take(5) == b"ls\r\x03\x04"
    assert not inbox.quit.is_set()


def test_escape_x_quits_after_forwarding_what_came_before(pty, inbox):
    master, slave = pty
    with console_on(slave, inbox) as console:
        os.write(master, b"ab\x01xcd")
        assert inbox.quit.wait(TIMEOUT)
        assert console.wait(TIMEOUT)
    assert inbox.take(2) == b"ab"
    assert inbox.chunks.empty()


def test_escape_escape_sends_one_ctrl_a(pty, inbox):
    master, slave = pty
    with console_on(slave, inbox):
        os.write(master, b"\x01\x01z")
        assert inbox.take(2) == b"\x01z"
    assert not inbox.quit.is_set()


def test_escape_survives_a_split_between_reads(pty, inbox):
    master, slave = pty
    with console_on(slave, inbox):
        os.write(master, b"a\x01")
        assert inbox.take(1) == b"a"
        os.write(master, b"x")
        assert inbox.quit.wait(TIMEOUT)


def test_escape_h_prints_help(pty, inbox):
    master, slave = pty
    help_out = io.StringIO()
    with console_on(slave, inbox, help_stream=help_out):
        os.write(master, b"\x01hq")
        assert inbox.take(1) == b"q"  # processed after the help, on the same thread
    assert help_out.getvalue() == HELP_TEXT
    assert "C-a x" in HELP_TEXT


def test_unknown_escape_is_swallowed(pty, inbox):
    master, slave = pty
    with console_on(slave, inbox):
        os.write(master, b"\x01qZ")
        assert inbox.take(1) == b"Z"
    assert not inbox.quit.is_set()


def test_hangup_stops_the_reader(pty, inbox):
    master, slave = pty
    with console_on(slave, inbox) as console:
        os.close(master)
        assert console.wait(TIMEOUT)
    assert not inbox.quit.is_set()


# --- Pipes --------------------------------------------------------------------------------


def test_piped_input_is_forwarded_verbatim_and_eof_stops_the_reader(inbox):
    read_end, write_end = os.pipe()
    try:
        with console_on(read_end, inbox) as console:
            os.write(write_end, b"echo hi\n\x01x\x01\x01")
            os.close(write_end)
            write_end = -1
            assert inbox.take(12) == b"echo hi\n\x01x\x01\x01"
            assert console.wait(TIMEOUT)
        assert not inbox.quit.is_set()
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)


# --- Output sink --------------------------------------------------------------------------


def test_output_sink_flushes_every_write():
    read_end, write_end = os.pipe()
    os.set_blocking(read_end, False)  # bytes still in the buffer: the read returns None
    with open(write_end, "wb") as stream, open(read_end, "rb", buffering=0) as reader:
        output = output_sink(stream)
        output(b"boot")
        assert reader.read(16) == b"boot"
        output(b"\r\n")
        assert reader.read(16) == b"\r\n"


def test_output_sink_survives_a_closed_reader():
    read_end, write_end = os.pipe()
    os.close(read_end)
    stream = open(write_end, "wb")
    output = output_sink(stream)
    output(b"x" * 10)  # EPIPE: no exception
    output(b"more")  # dropped quietly
    stream.close()  # the buffered residue now flushes to /dev/null instead of failing
    assert stream.closed


def test_output_sink_on_a_plain_buffer():
    buffer = io.BytesIO()
    output = output_sink(buffer)
    output(b"a")
    output(b"bc")
    assert buffer.getvalue() == b"abc"
