"""The gdb stub: one listening socket, at most one gdb at a time, and the command dispatch of
the GDB remote serial protocol over a `DebugSession` (kvmpy/accel/debug.py).

One thread serves everything with `select`: the listening socket (a second gdb is refused:
accepted and closed at once), the connection, and a pipe the session pokes when a vCPU stops.
All-stop: gdb attaching stops the guest; `vCont` resumes vCPUs to continue or step, and the
stop reply goes out when one of them stops, or when the VM ends (`W` with its exit status).

Threads are vCPUs: thread id = vCPU index + 1. Addresses in m/M/X/Z packets are virtual,
translated through the page tables of the thread `Hg` selected (Z: linear addresses).

A gdb that disconnects without `D` is treated as a detach: its breakpoints are removed and
the guest runs on. `k` ends the VM (status 0), as Ctrl-A x does.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import stat
import threading
from collections.abc import Callable

from ..accel.debug import Action, BreakpointKind, Cause, DebugStop
from ..errors import ConfigError
from . import monitor, registers, target_xml
from .packets import ACK, NACK, Acknowledgement, BadPacket, Interrupt, Packet, PacketReader, frame

log = logging.getLogger("kvmpy.gdb")

PACKET_SIZE = 0x4000                 # what qSupported offers gdb (payload bytes)
MAX_MEMORY_CHUNK = PACKET_SIZE // 2 - 16  # an m reply is hex: two characters a byte
RECEIVE_SIZE = 65536
SIGINT, SIGTRAP = 2, 5
ALL_THREADS, ANY_THREAD = -1, 0
ERROR_GENERIC, ERROR_NO_MEMORY, ERROR_INVALID = b"E01", b"E0e", b"E16"   # EFAULT (14), EINVAL (22)
OK = b"OK"
UNSUPPORTED = b""                    # the protocol's "I do not know this packet"
WATCH_NAMES = {BreakpointKind.WRITE: "watch", BreakpointKind.READ: "rwatch", BreakpointKind.ACCESS: "awatch"}
SUPPORTED = (f"PacketSize={PACKET_SIZE:x};qXfer:features:read+;vContSupported+;swbreak+;hwbreak+;"
             "QStartNoAckMode+").encode()
VCONT_ACTIONS = b"vCont;c;C;s;S;t"


class _BadRequest(Exception):
    """A packet whose arguments do not parse: answered with an error reply."""


def parse_address(spec: str) -> tuple[int, object]:
    """`tcp:HOST:PORT` or `unix:PATH` as (socket family, address); ConfigError otherwise."""
    kind, _, rest = spec.partition(":")
    if kind == "tcp":
        host, _, port = rest.rpartition(":")
        if host and port.isdigit() and int(port) < 65536:
            return socket.AF_INET6 if ":" in host else socket.AF_INET, (host.strip("[]"), int(port))
    elif kind == "unix" and rest:
        return socket.AF_UNIX, rest
    raise ConfigError(f"--gdb takes tcp:HOST:PORT or unix:PATH (got {spec!r})")


class GdbServer:
    """Listens for gdb on `address` and serves it over `session`; `on_kill()` ends the VM."""

    def __init__(self, session, address: str, on_kill: Callable[[], None]):
        self.session = session
        self.on_kill = on_kill
        family, where = parse_address(address)
        self._unix_path = where if family == socket.AF_UNIX else None
        if self._unix_path is not None and os.path.exists(self._unix_path):
            raise ConfigError(f"--gdb {address}: {self._unix_path} already exists")
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            if family != socket.AF_UNIX:
                self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._listener.bind(where)
            self._listener.listen(1)
        except OSError as error:
            self._listener.close()
            raise ConfigError(f"--gdb {address}: {error.strerror or error}") from None
        if family == socket.AF_UNIX:
            self.address = f"unix:{where}"
        else:
            host, port = self._listener.getsockname()[:2]
            self.address = f"tcp:{host}:{port}"
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_write, False)
        session.add_listener(self._wake)
        self._exit_code: int | None = None
        self._closed = False
        self._connection: _Connection | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._serve, name="gdb", daemon=True)
        self._thread.start()

    def finish(self, exit_code: int) -> None:
        """The VM has ended with `exit_code`: tell a gdb waiting for a stop (W), then close."""
        self._exit_code = exit_code
        self.close()

    def close(self) -> None:
        """Stop serving (the serving thread ends first) and release the sockets; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake()
        self.session.remove_listener(self._wake)
        if self._thread is not None:
            self._thread.join()
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self._listener.close()
        os.close(self._wake_read)
        os.close(self._wake_write)
        if self._unix_path is not None and _is_socket(self._unix_path):
            os.unlink(self._unix_path)

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except OSError:
            pass  # a full pipe wakes the server just as well; a closed one means it is gone

    def _serve(self) -> None:
        try:
            self._loop()
        except Exception:  # the stub must never take the VM down with it
            log.exception("gdb stub failed")
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _loop(self) -> None:
        while True:
            connection = self._connection
            watched = [self._listener, self._wake_read] + ([connection.sock] if connection else [])
            readable, _, _ = select.select(watched, [], [])
            if self._wake_read in readable:
                os.read(self._wake_read, RECEIVE_SIZE)
                if self._closed:
                    if connection is not None and self._exit_code is not None:
                        connection.vm_ended(self._exit_code)
                    return
                if connection is not None:
                    connection.collect_stop()
            if connection is not None and connection.sock in readable:  # before accepting: it may be an EOF
                if not connection.receive():
                    connection.close()
                    self._connection = None
            if self._listener in readable:
                self._accept()

    def _accept(self) -> None:
        sock, peer = self._listener.accept()
        if self._connection is not None:
            log.warning("gdb: refused a second connection (%s): one gdb at a time", peer or "unix socket")
            sock.close()
            return
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connection = _Connection(sock, self.session, self.on_kill)


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


class _Connection:
    """One gdb's session: the protocol state and the command dispatch."""

    def __init__(self, sock, session, on_kill):
        self.sock = sock
        self.session = session
        self.on_kill = on_kill
        self.reader = PacketReader(PACKET_SIZE)
        self.acknowledge = True          # until QStartNoAckMode
        self.running = False             # resumed: a stop reply is owed
        self.interrupted = False         # the owed stop was asked for with Ctrl-C
        self.open = True
        self.general_thread = 0          # Hg: whose registers and memory (vCPU index)
        self.continue_thread = ALL_THREADS  # Hc: what legacy c/s resume
        session.interrupt()              # attaching stops the guest
        self.last_stop = session.next_stop() or DebugStop(0, Cause.INTERRUPT)
        self.general_thread = self.last_stop.vcpu

    # --- the byte stream ---------------------------------------------------------------------
    def receive(self) -> bool:
        """Read and serve what gdb sent; False when the connection is over."""
        try:
            data = self.sock.recv(RECEIVE_SIZE)
        except OSError:
            data = b""
        if not data:
            if self.open:
                log.info("gdb disconnected: its breakpoints are removed and the guest runs on")
                self.session.detach()
            return False
        for event in self.reader.feed(data):
            if type(event) is Packet:
                if self.acknowledge:
                    self._write(ACK)
                self._packet(event.payload)
            elif type(event) is BadPacket:
                log.debug("gdb: bad packet (%s)", event.why)
                if self.acknowledge:
                    self._write(NACK)
            elif type(event) is Interrupt and self.running:
                self.interrupted = True
                self.session.interrupt(self.general_thread)
            elif type(event) is Acknowledgement and not event.positive:
                log.debug("gdb asked for a packet again; replies are not kept, so it times out instead")
            if not self.open:
                return False
        return True

    def _write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            self.open = False

    def _send(self, payload: bytes) -> None:
        self._write(frame(payload))

    def close(self) -> None:
        self.open = False
        self.sock.close()

    # --- stops -------------------------------------------------------------------------------
    def collect_stop(self) -> None:
        """A vCPU stopped (or the session was poked): send the owed stop reply, if one is owed."""
        if not self.running:
            return
        stop = self.session.next_stop()
        if stop is None:
            return
        self.running = False
        self.last_stop = stop
        self.general_thread = stop.vcpu
        self._send(self._stop_reply(stop))

    def vm_ended(self, exit_code: int) -> None:
        if self.running:
            self._send(b"W%02x" % (exit_code & 0xFF))
        self.close()

    def _stop_reply(self, stop: DebugStop) -> bytes:
        signal = SIGINT if stop.cause is Cause.INTERRUPT and self.interrupted else SIGTRAP
        reply = f"T{signal:02x}thread:{stop.vcpu + 1:x};"
        if stop.cause is Cause.SOFTWARE_BREAKPOINT:
            reply += "swbreak:;"
        elif stop.cause is Cause.HARDWARE_BREAKPOINT:
            reply += "hwbreak:;"
        elif stop.cause is Cause.WATCHPOINT:
            reply += f"{WATCH_NAMES[stop.kind]}:{stop.address:x};"
        return reply.encode()

    def _resume(self, actions: dict[int, Action]) -> None:
        if not actions:
            self._send(self._stop_reply(self.last_stop))
            return
        self.running = True
        self.interrupted = False
        self.session.resume(actions)

    # --- dispatch ----------------------------------------------------------------------------
    def _packet(self, payload: bytes) -> None:
        try:
            text = payload.decode("latin-1")
            reply = self._dispatch(text, payload)
        except (_BadRequest, ValueError, IndexError, KeyError) as error:
            log.debug("gdb: bad request %r: %s", payload[:64], error)
            reply = ERROR_INVALID
        except Exception:  # never let a packet take the stub down
            log.exception("gdb: failed to serve %r", payload[:64])
            reply = ERROR_GENERIC
        if reply is not None:
            self._send(reply)

    def _dispatch(self, text: str, payload: bytes) -> bytes | None:
        """The reply to one packet; None when there is none (a resume, `k`)."""
        command = text[:1]
        if command == "?":
            return self._stop_reply(self.last_stop)
        if command == "g":
            return registers.read_all(self._state()).hex().encode()
        if command == "G":
            self._write_state(registers.write_all(self._state(), bytes.fromhex(text[1:])))
            return OK
        if command == "p":
            number = int(text[1:], 16)
            if not 0 <= number < len(registers.REGISTERS):
                return ERROR_INVALID
            return registers.read_register(self._state(), number).hex().encode()
        if command == "P":
            number, value = text[1:].split("=")
            number = int(number, 16)
            if not 0 <= number < len(registers.REGISTERS):
                return ERROR_INVALID
            self._write_state(registers.write_register(self._state(), number, bytes.fromhex(value)))
            return OK
        if command == "m":
            address, length = (int(field, 16) for field in text[1:].split(","))
            data = self.session.read_memory(self.general_thread, address, min(length, MAX_MEMORY_CHUNK))
            return ERROR_NO_MEMORY if data is None else data.hex().encode()
        if command in ("M", "X"):
            return self._write_memory(command, text, payload)
        if command in ("Z", "z"):
            return self._breakpoint(command == "Z", text[1:])
        if command in ("c", "s"):
            return self._legacy_resume(command, text[1:])
        if command == "H":
            return self._select_thread(text[1:2], text[2:])
        if command == "T":
            return OK if self._vcpu_of(text[1:]) is not None else ERROR_INVALID
        if command == "D":
            self._send(OK)
            self.session.detach()
            self.open = False
            return None
        if command == "k":
            self._kill()
            return None
        if command == "v":
            return self._v_packet(text)
        if command in ("q", "Q"):
            return self._query(text)
        return UNSUPPORTED

    def _state(self):
        return self.session.backend.read_state(self.general_thread)

    def _write_state(self, state) -> None:
        self.session.backend.write_state(self.general_thread, state)

    def _write_memory(self, command: str, text: str, payload: bytes) -> bytes:
        header, _, _ = text[1:].partition(":")
        address, length = (int(field, 16) for field in header.split(","))
        body = payload[payload.index(b":") + 1:]
        data = bytes.fromhex(body.decode("latin-1")) if command == "M" else body  # X: already unescaped
        if len(data) != length:
            raise _BadRequest(f"{command} says {length} bytes and carries {len(data)}")
        if not data:
            return OK  # gdb's probe for X
        return OK if self.session.write_memory(self.general_thread, address, data) else ERROR_NO_MEMORY

    def _breakpoint(self, insert: bool, arguments: str) -> bytes:
        kind, address, length = arguments.split(";")[0].split(",")
        kind, address, length = BreakpointKind(int(kind)), int(address, 16), int(length, 16)
        backend = self.session.backend
        if not backend.supports(kind):
            return UNSUPPORTED
        if insert:
            done = backend.insert(self.general_thread, kind, address, length)
        else:
            done = backend.remove(self.general_thread, kind, address, length)
        if done:
            return OK
        return ERROR_NO_MEMORY if kind == BreakpointKind.SOFTWARE else ERROR_INVALID

    def _legacy_resume(self, command: str, address: str) -> None:
        """`c`/`s` [addr]: continue every vCPU, or step the Hc one (others stay stopped)."""
        target = self.continue_thread if self.continue_thread >= 0 else self.general_thread
        if address:
            state = self.session.backend.read_state(target)
            state.gprs["rip"] = int(address, 16)
            self.session.backend.write_state(target, state)
        if command == "s":
            self._resume({target: Action.STEP})
        else:
            self._resume({index: Action.CONTINUE for index in range(self.session.vcpu_count)})
        return None

    def _select_thread(self, operation: str, thread: str) -> bytes:
        tid = _thread_id(thread)
        if tid in (ANY_THREAD, ALL_THREADS):
            index = self.general_thread if tid == ANY_THREAD or operation == "g" else ALL_THREADS
        else:
            index = self._vcpu_of(thread)
            if index is None:
                return ERROR_INVALID
        if operation == "g":
            self.general_thread = index
        elif operation == "c":
            self.continue_thread = index
        else:
            return ERROR_INVALID
        return OK

    def _vcpu_of(self, thread: str) -> int | None:
        tid = _thread_id(thread)
        return tid - 1 if 1 <= tid <= self.session.vcpu_count else None

    def _kill(self) -> None:
        log.info("gdb killed the VM")
        self.open = False
        self.on_kill()

    def _v_packet(self, text: str) -> bytes | None:
        if text == "vCont?":
            return VCONT_ACTIONS
        if text.startswith("vCont;"):
            self._resume(self._vcont_actions(text[len("vCont;"):]))
            return None
        if text.startswith("vKill"):
            self._send(OK)
            self._kill()
            return None
        return UNSUPPORTED  # vMustReplyEmpty and everything else

    def _vcont_actions(self, spec: str) -> dict[int, Action]:
        """vCont's actions per vCPU: the leftmost action naming a thread applies to it; `t`
        (stay stopped) and an action for no thread leave it held."""
        chosen: dict[int, Action | None] = {}
        for part in spec.split(";"):
            action, _, thread = part.partition(":")
            if not action or action[0] not in "cCsSt":
                raise _BadRequest(f"vCont action {action!r}")
            what = {"c": Action.CONTINUE, "C": Action.CONTINUE, "s": Action.STEP, "S": Action.STEP}.get(action[0])
            if thread and _thread_id(thread) != ALL_THREADS:
                index = self._vcpu_of(thread)
                if index is None:
                    raise _BadRequest(f"vCont thread {thread!r}")
                targets = [index]
            else:
                targets = range(self.session.vcpu_count)
            for index in targets:
                chosen.setdefault(index, what)
        return {index: what for index, what in chosen.items() if what is not None}

    def _query(self, text: str) -> bytes:
        name, _, arguments = text.partition(":") if not text.startswith(("qRcmd,", "qThreadExtraInfo,")) \
            else text.partition(",")
        if name == "qSupported":
            return SUPPORTED
        if name == "QStartNoAckMode":
            self._send(OK)       # acknowledged like any packet; none after it
            self.acknowledge = False
            return None
        if name == "qXfer":
            return self._xfer(arguments)
        if name == "qAttached":
            return b"1"          # a machine that was there before gdb: detach must not kill it
        if name == "qC":
            return f"QC{self.general_thread + 1:x}".encode()
        if name == "qfThreadInfo":
            return ("m" + ",".join(f"{index + 1:x}" for index in range(self.session.vcpu_count))).encode()
        if name == "qsThreadInfo":
            return b"l"
        if name == "qThreadExtraInfo":
            index = self._vcpu_of(arguments)
            return ERROR_INVALID if index is None else f"vCPU {index}".encode().hex().encode()
        if name == "qRcmd":
            output = monitor.run_command(bytes.fromhex(arguments).decode("latin-1"), self.session)
            self._send(b"O" + output.encode().hex().encode())
            return OK
        if name == "qSymbol":
            return OK
        return UNSUPPORTED

    def _xfer(self, arguments: str) -> bytes:
        obj, operation, annex, window = arguments.split(":")
        if (obj, operation) != ("features", "read"):
            return UNSUPPORTED
        offset, length = (int(field, 16) for field in window.split(","))
        part = target_xml.read_annex(annex, offset, min(length, MAX_MEMORY_CHUNK))
        return ERROR_NO_MEMORY if part is None else part


def _thread_id(text: str) -> int:
    """A thread id (hex, `-1` all, `0` any; the multiprocess `pPID.TID` form too)."""
    if text.startswith("p"):
        text = text.partition(".")[2] or "-1"
    if text == "-1":
        return ALL_THREADS
    return int(text, 16)
