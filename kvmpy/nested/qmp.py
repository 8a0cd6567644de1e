"""A QMP session with the lane's QEMU: what the host uses to look into an outer VM that froze,
and to shake it loose.

QMP rather than the human monitor's socket: its replies are framed JSON (no prompt or line
editing to strip), and human-monitor commands still come back as their plain text.
"""

from __future__ import annotations

import json
import socket


class QmpError(Exception):
    """QEMU refused a command, or the connection ended."""


class Qmp:
    """One QMP connection, in command mode (capabilities negotiated)."""

    def __init__(self, path: str, timeout: float = 5.0):
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._socket.settimeout(timeout)
            self._socket.connect(path)
            self._stream = self._socket.makefile("rwb")
            self._reply()  # the greeting
            self.execute("qmp_capabilities")
        except BaseException:
            self._socket.close()
            raise

    def execute(self, command: str, **arguments):
        """Run `command`; its "return" value."""
        request = {"execute": command, **({"arguments": arguments} if arguments else {})}
        self._stream.write(json.dumps(request).encode() + b"\n")
        self._stream.flush()
        return self._reply().get("return")

    def human(self, command_line: str) -> str:
        """A human-monitor command's output (`info registers`, `x/8i $pc`...)."""
        return str(self.execute("human-monitor-command", **{"command-line": command_line})).replace("\r", "")

    def _reply(self) -> dict:
        """The next reply (or the greeting); asynchronous events in between are skipped."""
        while True:
            line = self._stream.readline()
            if not line:
                raise QmpError("QEMU closed the QMP connection")
            message = json.loads(line)
            if "error" in message:
                raise QmpError(message["error"].get("desc", "QMP error"))
            if "event" not in message:
                return message

    def close(self) -> None:
        self._stream.close()
        self._socket.close()

    def __enter__(self) -> "Qmp":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
