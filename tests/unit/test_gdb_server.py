"""The gdb stub's command dispatch (kvmpy/gdb/server.py) against a made-up machine: a real
DebugSession over runners that never run and a backend that keeps its state in dicts."""

import copy
import socket

import pytest

from kvmpy.accel.debug import (
    CONTROL_NAMES,
    GPR_NAMES,
    SEGMENT_NAMES,
    Action,
    BreakpointKind,
    Cause,
    CpuState,
    DebugBackend,
    DebugSession,
    DebugStop,
)
from kvmpy.errors import ConfigError
from kvmpy.gdb import GdbServer, parse_address
from kvmpy.gdb.packets import Packet, PacketReader, frame
from kvmpy.gdb.registers import G_PACKET_SIZE, NUMBERS
from kvmpy.gdb.target_xml import target_xml
from kvmpy.memory import GuestMemory, MemoryRegion

pytestmark = pytest.mark.gdb

RECEIVE_TIMEOUT = 10.0
VCPUS = 2
RIP = 0x100000


class IdleRunner:
    """A runner whose thread never started: parked as far as the session is concerned."""

    def __init__(self):
        self.debug = None
        self.debug_hold = False
        self.stop_requested = False
        self.running = False

    def kick(self):
        pass


class DictBackend(DebugBackend):
    def __init__(self, memory):
        super().__init__(memory)
        gprs = dict.fromkeys(GPR_NAMES, 0) | {"rip": RIP, "rflags": 2}
        self.states = [CpuState(dict(gprs, rax=index), dict.fromkeys(SEGMENT_NAMES, (0, 0)),
                                dict.fromkeys(CONTROL_NAMES, 0), bytes(512)) for index in range(VCPUS)]
        self.breakpoints = []
        self.removed_all = False

    def read_state(self, vcpu):
        return copy.deepcopy(self.states[vcpu])

    def write_state(self, vcpu, state):
        self.states[vcpu] = copy.deepcopy(state)

    def supports(self, kind):
        return kind != BreakpointKind.READ

    def insert(self, vcpu, kind, address, length):
        self.breakpoints.append((vcpu, kind, address, length))
        return True

    def remove(self, vcpu, kind, address, length):
        try:
            self.breakpoints.remove((vcpu, kind, address, length))
        except ValueError:
            return False
        return True

    def armed(self):
        return list(self.breakpoints)

    def remove_all(self):
        self.removed_all = True
        super().remove_all()


class Gdb:
    """The gdb side of a connection: send packets, read replies (acks checked)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(RECEIVE_TIMEOUT)
        self.sock.connect(path)
        self.reader = PacketReader(1 << 20)
        self.events = []

    def _next_event(self):
        while not self.events:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the stub closed the connection")
            self.events += self.reader.feed(data)
        return self.events.pop(0)

    def send_raw(self, data: bytes):
        self.sock.sendall(data)

    def ask(self, payload: bytes, acked=True) -> bytes:
        self.send_raw(frame(payload))
        if acked:
            ack = self._next_event()
            assert getattr(ack, "positive", None) is True, ack
        return self.reply()

    def reply(self) -> bytes:
        event = self._next_event()
        assert isinstance(event, Packet), event
        return event.payload

    def next_event(self):
        return self._next_event()


@pytest.fixture
def memory():
    memory = GuestMemory([MemoryRegion(0, 2 << 20)])
    yield memory
    memory.close()


@pytest.fixture
def stub(tmp_path, memory):
    runners = [IdleRunner() for _ in range(VCPUS)]
    backend = DictBackend(memory)
    session = DebugSession(runners, backend)
    kills = []
    path = str(tmp_path / "gdb.sock")
    server = GdbServer(session, f"unix:{path}", on_kill=lambda: kills.append(True))
    server.start()
    gdb = Gdb(path)
    yield server, session, backend, gdb, kills, path
    gdb.sock.close()
    server.close()


def test_addresses_parse_and_bad_ones_are_config_errors():
    assert parse_address("tcp:127.0.0.1:1234") == (socket.AF_INET, ("127.0.0.1", 1234))
    assert parse_address("unix:/tmp/x")[1] == "/tmp/x"
    for bad in ("tcp:1234", "tcp:host:port", "udp:x:1", "unix:", "1234"):
        with pytest.raises(ConfigError):
            parse_address(bad)


def test_a_tcp_stub_reports_its_real_port(memory):
    session = DebugSession([IdleRunner()], DictBackend(memory))
    server = GdbServer(session, "tcp:127.0.0.1:0", on_kill=lambda: None)
    try:
        host, port = server.address.rsplit(":", 1)
        assert host == "tcp:127.0.0.1" and int(port) > 0
    finally:
        server.close()


def test_qsupported_and_the_target_description(stub):
    _, _, _, gdb, _, _ = stub
    features = gdb.ask(b"qSupported:multiprocess+;swbreak+;hwbreak+;xmlRegisters=i386").split(b";")
    assert b"qXfer:features:read+" in features and b"vContSupported+" in features
    size = int(next(f for f in features if f.startswith(b"PacketSize=")).split(b"=")[1], 16)
    document = b""
    while True:
        part = gdb.ask(b"qXfer:features:read:target.xml:%x,%x" % (len(document), size // 2))
        document += part[1:]
        if part[:1] == b"l":
            break
        assert part[:1] == b"m"
    assert document == target_xml()
    assert gdb.ask(b"qXfer:features:read:nope.xml:0,100").startswith(b"E")


def test_attaching_stops_the_guest_and_reports_threads(stub):
    _, session, _, gdb, _, _ = stub
    assert gdb.ask(b"?").startswith(b"T05thread:1;")
    assert all(runner.debug_hold for runner in session.runners)
    assert gdb.ask(b"qfThreadInfo") == b"m1,2" and gdb.ask(b"qsThreadInfo") == b"l"
    assert gdb.ask(b"qC") == b"QC1"
    assert gdb.ask(b"T2") == b"OK" and gdb.ask(b"T3").startswith(b"E")
    assert bytes.fromhex(gdb.ask(b"qThreadExtraInfo,2").decode()) == b"vCPU 1"
    assert gdb.ask(b"qAttached") == b"1"


def test_registers_per_thread(stub):
    _, _, backend, gdb, _, _ = stub
    g = gdb.ask(b"g")
    assert len(g) == 2 * G_PACKET_SIZE
    assert gdb.ask(b"p%x" % NUMBERS["rip"]) == RIP.to_bytes(8, "little").hex().encode()
    assert gdb.ask(b"Hg2") == b"OK"
    assert gdb.ask(b"p0") == (1).to_bytes(8, "little").hex().encode()        # vCPU 1's rax
    assert gdb.ask(b"P%x=%s" % (NUMBERS["rbx"], (0x1234).to_bytes(8, "little").hex().encode())) == b"OK"
    assert backend.states[1].gprs["rbx"] == 0x1234 and backend.states[0].gprs["rbx"] == 0
    assert gdb.ask(b"G" + gdb.ask(b"g")) == b"OK"
    assert gdb.ask(b"p999").startswith(b"E") and gdb.ask(b"Hg9").startswith(b"E")


def test_memory_reads_and_writes(stub, memory):
    _, _, _, gdb, _, _ = stub
    memory.write(0x1000, b"\x90\xcc\x0f\x0b")
    assert gdb.ask(b"m1000,4") == b"90cc0f0b"
    assert gdb.ask(b"M1000,2:4142") == b"OK" and memory.read(0x1000, 2) == b"AB"
    assert gdb.ask(b"X1002,3:$#}") == b"OK" and memory.read(0x1002, 3) == b"$#}"   # binary, escaped by frame()
    assert gdb.ask(b"X1000,0:") == b"OK"
    assert gdb.ask(b"m7ffffffff,4") == b"E0e"                            # past guest RAM


def test_breakpoints_reach_the_backend_and_unsupported_kinds_say_so(stub):
    _, _, backend, gdb, _, _ = stub
    assert gdb.ask(b"Z0,100010,1") == b"OK" and gdb.ask(b"Z1,100027,1") == b"OK"
    assert gdb.ask(b"Z2,200000,8") == b"OK"
    assert gdb.ask(b"Z3,200000,8") == b""                                 # this backend has no read watch
    assert backend.breakpoints == [(0, BreakpointKind.SOFTWARE, 0x100010, 1),
                                   (0, BreakpointKind.HARDWARE, 0x100027, 1),
                                   (0, BreakpointKind.WRITE, 0x200000, 8)]
    assert gdb.ask(b"z1,100027,1") == b"OK" and gdb.ask(b"z1,100027,1").startswith(b"E")


def test_vcont_resumes_per_thread_and_the_stop_reply_follows_the_stop(stub, monkeypatch):
    _, session, _, gdb, _, _ = stub
    assert gdb.ask(b"vCont?") == b"vCont;c;C;s;S;t"
    resumed = []
    monkeypatch.setattr(session, "resume", lambda actions: resumed.append(actions))
    gdb.send_raw(frame(b"vCont;s:2;c"))
    assert gdb.next_event().positive
    session.report(DebugStop(1, Cause.STEP))
    assert gdb.reply() == b"T05thread:2;"
    assert resumed == [{1: Action.STEP, 0: Action.CONTINUE}]
    gdb.send_raw(frame(b"vCont;c:1"))
    gdb.next_event()
    session.report(DebugStop(0, Cause.WATCHPOINT, 0x200000, BreakpointKind.WRITE))
    assert gdb.reply() == b"T05thread:1;watch:200000;"
    assert resumed[-1] == {0: Action.CONTINUE}
    assert gdb.ask(b"vCont;x").startswith(b"E")


def test_ctrl_c_stops_a_running_guest_with_sigint(stub):
    _, session, _, gdb, _, _ = stub
    gdb.send_raw(frame(b"vCont;c"))
    assert gdb.next_event().positive
    assert not any(runner.debug_hold for runner in session.runners)
    gdb.send_raw(b"\x03")
    assert gdb.reply() == b"T02thread:1;"
    assert all(runner.debug_hold for runner in session.runners)


def test_malformed_input_gets_nacks_or_errors_and_the_stub_goes_on(stub):
    _, _, _, gdb, _, _ = stub
    gdb.send_raw(b"$g#00")                                                # wrong checksum
    assert gdb.next_event().positive is False
    gdb.send_raw(b"$" + b"m" * 0x5000 + b"#00")                            # longer than PacketSize
    assert gdb.next_event().positive is False
    for bad in (b"mzz", b"m1000", b"Z9,0,0", b"Zx", b"P0", b"G00", b"Hq1", b"M1000,4:41", b"qRcmd,zz"):
        assert gdb.ask(bad).startswith(b"E"), bad
    assert gdb.ask(b"jumbo") == b"" and gdb.ask(b"vMustReplyEmpty") == b""
    assert gdb.ask(b"?").startswith(b"T05")


def test_no_ack_mode(stub):
    _, _, _, gdb, _, _ = stub
    assert gdb.ask(b"QStartNoAckMode") == b"OK"
    assert gdb.ask(b"qC", acked=False) == b"QC1"


def test_monitor_commands(stub, memory):
    _, _, _, gdb, _, _ = stub
    memory.write(0x2000, bytes(range(4)))

    def monitor(command: bytes) -> str:
        gdb.send_raw(frame(b"qRcmd," + command.hex().encode()))
        assert gdb.next_event().positive
        output = gdb.reply()
        assert output.startswith(b"O") and gdb.reply() == b"OK"
        return bytes.fromhex(output[1:].decode()).decode()

    assert "xp ADDR" in monitor(b"help")
    assert monitor(b"xp 0x2000 4") == "0000000000002000: 00 01 02 03\n"
    assert "outside guest RAM" in monitor(b"xp 0x7fffffff 4")
    assert monitor(b"cpus").count("vCPU") == VCPUS
    assert "unknown monitor command" in monitor(b"frobnicate")


def test_a_second_gdb_is_refused_and_the_first_goes_on(stub):
    _, _, _, gdb, _, path = stub
    second = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    second.settimeout(RECEIVE_TIMEOUT)
    second.connect(path)
    assert second.recv(100) == b""
    second.close()
    assert gdb.ask(b"qC") == b"QC1"


def test_a_disconnect_detaches_and_lets_the_guest_run(stub):
    server, session, backend, gdb, _, path = stub
    gdb.ask(b"Z0,100010,1")
    gdb.sock.close()
    again = Gdb(path)        # the stub sees the first one's end before it accepts this one
    assert again.ask(b"qC") == b"QC1"
    assert backend.removed_all and backend.breakpoints == []
    again.sock.close()


def test_detach_and_kill(stub):
    _, session, backend, gdb, kills, path = stub
    assert gdb.ask(b"D") == b"OK"
    assert backend.removed_all and not any(runner.debug_hold for runner in session.runners)
    again = Gdb(path)
    again.send_raw(frame(b"k"))
    assert again.next_event().positive
    with pytest.raises(ConnectionError):
        again.next_event()
    assert kills == [True]


def test_the_end_of_the_vm_is_reported_to_a_waiting_gdb(stub):
    server, _, _, gdb, _, _ = stub
    gdb.send_raw(frame(b"vCont;c"))
    assert gdb.next_event().positive
    server.finish(3)
    assert gdb.reply() == b"W03"
