"""The terminal side of the serial console: keyboard to guest, guest to screen.

`Console` forwards what arrives on stdin to a callback (the UART's `enqueue_input`) from a
reader thread. On a terminal it puts stdin in raw mode for its lifetime, so keys such as
Ctrl-C reach the guest, and offers QEMU's escapes: Ctrl-A x quits, Ctrl-A Ctrl-A sends a
Ctrl-A, Ctrl-A h prints help; any other key after Ctrl-A is swallowed. Output post-processing
stays on in raw mode so the VMM's own log lines still start at column 0.

When stdin is not a terminal (a pipe or file, as in CI) termios is left alone and bytes are
forwarded verbatim, escapes included; end of input just stops the reader.

`output_sink` is the other direction: guest bytes to a binary stream, flushed at once.
"""

from __future__ import annotations

import os
import select
import sys
import termios
import threading
from typing import BinaryIO, Callable, TextIO

ESCAPE = 0x01  # Ctrl-A
QUIT_KEY = ord("x")
HELP_KEYS = (ord("h"), ord("?"))
READ_CHUNK = 4096

HELP_TEXT = (
    "\n"
    "C-a x    exit kvmpy\n"
    "C-a C-a  send C-a to the guest\n"
    "C-a h    print this help\n"
)

# indices into termios.tcgetattr()'s list
_IFLAG, _CFLAG, _LFLAG, _CC = 0, 2, 3, 6


class Console:
    """Feeds stdin to `on_input` from a thread until quit, end of input or `close()`.

    Use as a context manager: the terminal's mode is restored on exit, exceptions included.
    `on_input` and `on_quit` run on the reader thread.
    """

    def __init__(
        self,
        on_input: Callable[[bytes], object],
        on_quit: Callable[[], None],
        *,
        fd: int | None = None,
        help_stream: TextIO | None = None,
    ):
        self._on_input = on_input
        self._on_quit = on_quit
        self._fd = sys.stdin.fileno() if fd is None else fd
        self._help_stream = help_stream
        self._interactive = os.isatty(self._fd)
        self._saved_mode: list | None = None
        self._escape_pending = False
        self._wake_r, self._wake_w = os.pipe()
        self._thread = threading.Thread(target=self._read_loop, name="console-input", daemon=True)

    def __enter__(self) -> Console:
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def start(self) -> None:
        if self._interactive:
            self._enter_raw_mode()
        try:
            self._thread.start()
        except BaseException:
            self._restore_mode()
            raise

    def close(self) -> None:
        """Stop the reader and give the terminal its mode back; safe to call more than once."""
        try:
            if self._thread.is_alive():
                os.write(self._wake_w, b"\0")
                self._thread.join()
        finally:
            self._restore_mode()
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._wake_r = self._wake_w = -1

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the reader to stop (quit, end of input or close); True once it has."""
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # --- Terminal mode -------------------------------------------------------------------

    def _enter_raw_mode(self) -> None:
        saved = termios.tcgetattr(self._fd)
        mode = [list(item) if isinstance(item, list) else item for item in saved]
        mode[_IFLAG] &= ~(
            termios.IGNBRK | termios.BRKINT | termios.PARMRK | termios.ISTRIP
            | termios.INLCR | termios.IGNCR | termios.ICRNL | termios.IXON
        )
        mode[_LFLAG] &= ~(
            termios.ECHO | termios.ECHONL | termios.ICANON | termios.ISIG | termios.IEXTEN
        )
        mode[_CFLAG] = (mode[_CFLAG] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
        mode[_CC][termios.VMIN] = 1
        mode[_CC][termios.VTIME] = 0
        termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        self._saved_mode = saved

    def _restore_mode(self) -> None:
        saved, self._saved_mode = self._saved_mode, None
        if saved is not None:
            try:
                termios.tcsetattr(self._fd, termios.TCSANOW, saved)
            except termios.error:
                pass  # the terminal hung up: there is nothing left to restore

    # --- Reader thread -------------------------------------------------------------------

    def _read_loop(self) -> None:
        poller = select.poll()
        poller.register(self._fd, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        while True:
            ready = poller.poll()
            if any(fd == self._wake_r for fd, _ in ready):
                return
            try:
                data = os.read(self._fd, READ_CHUNK)
            except OSError:
                return  # the terminal went away (EIO from a closed pty, EBADF)
            if not data or not self._deliver(data):
                return

    def _deliver(self, data: bytes) -> bool:
        """Pass `data` on, acting on escapes; False once the user has asked to quit."""
        if not self._interactive or (not self._escape_pending and ESCAPE not in data):
            self._on_input(data)
            return True
        forward = bytearray()
        for byte in data:
            if self._escape_pending:
                self._escape_pending = False
                if byte == ESCAPE:
                    forward.append(ESCAPE)
                elif byte == QUIT_KEY:
                    if forward:
                        self._on_input(bytes(forward))
                    self._on_quit()
                    return False
                elif byte in HELP_KEYS:
                    self._print_help()
            elif byte == ESCAPE:
                self._escape_pending = True
            else:
                forward.append(byte)
        if forward:
            self._on_input(bytes(forward))
        return True

    def _print_help(self) -> None:
        stream = self._help_stream or sys.stderr
        stream.write(HELP_TEXT)
        stream.flush()


def output_sink(stream: BinaryIO | None = None) -> Callable[[bytes], None]:
    """A function writing guest output to `stream` (default: stdout) and flushing it at once.

    When the reader goes away (EPIPE) output is dropped from then on, and the stream's file
    descriptor is pointed at /dev/null so the bytes still buffered cannot fail the
    interpreter's final flush (which would turn the exit status into 120).
    """
    if stream is None:
        stream = sys.stdout.buffer
    broken = False

    def output(data: bytes) -> None:
        nonlocal broken
        if broken:
            return
        try:
            stream.write(data)
            stream.flush()
        except BrokenPipeError:
            broken = True
            _silence(stream)

    return output


def _silence(stream: BinaryIO) -> None:
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not backed by a descriptor: nothing will flush it to a pipe
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, fd)
    finally:
        os.close(devnull)
