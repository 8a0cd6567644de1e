"""The nested lane's pure parts: module dependencies and load order, the outer initramfs, the
QEMU command, the command script, and reading the console (no QEMU started)."""

import json
import os
import pathlib
import shlex
import socket
import subprocess
import threading
import time

import pytest

from kvmpy.nested.image import HEARTBEAT_FILE, INIT_SCRIPT, LaneUnavailable, build_archive, load_order, module_dependencies
from kvmpy.nested.lane import (ask_monitor, command_script, heartbeat_age, parse_console, qemu_command)


def fake_module(depends: str) -> bytes:
    """The bytes of a .ko as far as module_dependencies reads it: a .modinfo string table."""
    return b"\x7fELF...\0license=GPL\0depends=" + depends.encode() + b"\0retpoline=Y\0vermagic=6.1\0"


@pytest.fixture
def modules(tmp_path):
    """A module tree: kvm-amd needs kvm and ccp, kvm needs irqbypass, 9p needs netfs (built in)."""
    tree = {"kvm-amd": "kvm,ccp", "kvm": "irqbypass", "ccp": "", "irqbypass": "", "9p": "netfs"}
    index = {}
    for name, depends in tree.items():
        path = tmp_path / f"{name}.ko"
        path.write_bytes(fake_module(depends))
        index[name.replace("-", "_")] = path
    return index


def test_dependencies_come_from_modinfo():
    assert module_dependencies(fake_module("virtio,9pnet,virtio_ring")) == ["virtio", "9pnet", "virtio_ring"]
    assert module_dependencies(fake_module("")) == []
    assert module_dependencies(b"no modinfo here") == []


def test_every_module_loads_after_its_dependencies(modules):
    order = load_order(("kvm_amd", "9p"), modules)
    assert order == ["irqbypass", "kvm", "ccp", "kvm_amd", "9p"]  # netfs: built in, not loaded


def test_a_missing_module_is_a_clear_error(modules):
    with pytest.raises(LaneUnavailable, match="no module overlay"):
        load_order(("overlay",), modules)


def test_a_dependency_loop_is_a_clear_error(tmp_path):
    a, b = tmp_path / "a.ko", tmp_path / "b.ko"
    a.write_bytes(fake_module("b"))
    b.write_bytes(fake_module("a"))
    with pytest.raises(LaneUnavailable, match="loop"):
        load_order(("a",), {"a": a, "b": b})


def newc_entries(archive: bytes) -> dict[str, bytes]:
    """Name -> data of each entry of a newc cpio archive, up to its trailer."""
    entries, offset = {}, 0
    while True:
        header = archive[offset:offset + 110]
        assert header[:6] == b"070701"
        size, name_size = int(header[54:62], 16), int(header[94:102], 16)
        name = archive[offset + 110:offset + 110 + name_size - 1].decode()
        data_start = offset + 110 + name_size + (-(110 + name_size) % 4)
        if name == "TRAILER!!!":
            return entries
        entries[name] = archive[data_start:data_start + size]
        offset = data_start + size + (-size % 4)


def test_the_outer_initramfs_holds_init_busybox_and_the_modules_in_order():
    archive = build_archive(b"BUSYBOX", ["sh", "insmod"], [("kvm.ko", b"KVM"), ("kvm-amd.ko", b"AMD")])
    entries = newc_entries(archive)
    assert entries["init"] == INIT_SCRIPT.encode()
    assert entries["bin/busybox"] == b"BUSYBOX" and entries["bin/insmod"] == b"busybox"  # a symlink's target
    assert (entries["lib/modules/kvm.ko"], entries["lib/modules/kvm-amd.ko"]) == (b"KVM", b"AMD")
    assert entries["lib/modules/load-order"] == b"kvm.ko\nkvm-amd.ko\n"


def test_the_init_script_is_valid_shell():
    assert subprocess.run(["sh", "-n"], input=INIT_SCRIPT, text=True).returncode == 0


def test_qemu_gets_amd_v_the_host_root_read_only_and_the_shares_writable():
    command = qemu_command("/usr/bin/qemu-system-x86_64", "/k", "/i", "/tmp/job", "4G", 2, writable=("/tmp/out",))
    text = " ".join(command)
    assert command[0] == "/usr/bin/qemu-system-x86_64"
    assert "unix:/tmp/job/qmp.sock,server=on,wait=off" in command
    assert command[command.index("-cpu") + 1].startswith("EPYC,+svm,+npt")
    assert "local,id=hostroot,path=/,readonly=on" in text
    assert "local,id=job,path=/tmp/job,security_model=none" in text
    assert "local,id=share0,path=/tmp/out,security_model=none" in text and "mount_tag=share0" in text
    assert "kvmpy.lane.job=/tmp/job" in command[command.index("-append") + 1]


def test_the_command_script_keeps_the_environment_and_quotes_everything():
    script = command_script(["pytest", "-k", "a and b"], "/work/my dir",
                            {"PATH": "/usr/bin", "HOME": "/root", "ODD": "it's", "PWD": "/elsewhere",
                             "PYTEST_CURRENT_TEST": "x", "BAD-NAME": "1"})
    assert "export PATH=/usr/bin\n" in script and f"export ODD={shlex.quote(chr(39).join(['it', 's']))}\n" in script
    assert "PWD" not in script and "PYTEST_CURRENT_TEST" not in script and "BAD-NAME" not in script
    assert "export KVMPY_LANE=1\n" in script
    assert script.endswith("cd '/work/my dir' || exit 125\nexec pytest -k 'a and b'\n")


def test_the_console_gives_the_output_and_the_status():
    console = "KVMPY-LANE-KVM SVM: x\nKVMPY-LANE-BEGIN\nhello\nworld\nKVMPY-LANE-END status=7\n[ 1.0] Power down\n"
    assert parse_console(console) == ("hello\nworld\n", 7)
    assert parse_console("KVMPY-LANE-BEGIN\npartial\n") == ("partial\n", None)
    assert parse_console("kernel panic\n") == ("", None)


def test_a_silent_lane_is_stopped_as_hung_and_a_finished_one_is_not(tmp_path):
    from kvmpy.nested.lane import _wait

    job = str(tmp_path)
    silent = subprocess.Popen(["sleep", "30"])
    try:
        started = time.monotonic()
        why = _wait(silent, job, started, timeout=60, idle_timeout=0.2, last_line_at=[started], revivals=[])
        assert why.startswith("the lane printed nothing for 0 s") and time.monotonic() - started < 10
        why = _wait(silent, job, started, timeout=0.3, idle_timeout=None, last_line_at=[started], revivals=[])
        assert why == "the lane was still running after 0 s"
    finally:
        silent.kill()
        silent.wait()
    done = subprocess.Popen(["true"])
    assert _wait(done, job, time.monotonic(), timeout=30, idle_timeout=20, last_line_at=[time.monotonic()],
                 revivals=[]) == ""


class FakeQmp:
    """A stand-in for QEMU's QMP socket: the greeting, then a reply per command, each after an
    event (which the client must skip). `on_command` may act on a command (and raise to refuse)."""

    def __init__(self, path: str, on_command=lambda request: None, connections: int = 1):
        self.requests = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        self._server.listen(connections)
        self._thread = threading.Thread(target=self._serve, args=(on_command, connections))
        self._thread.start()

    def _serve(self, on_command, connections: int) -> None:
        for _ in range(connections):
            connection, _ = self._server.accept()
            with connection, connection.makefile("rwb") as stream:
                stream.write(b'{"QMP": {"version": {}, "capabilities": []}}\n')
                stream.flush()
                for line in stream:
                    request = json.loads(line)
                    self.requests.append(request)
                    stream.write(b'{"event": "RTC_CHANGE", "data": {}}\n')
                    if request["execute"] == "human-monitor-command":
                        reply = {"return": "answer to " + request["arguments"]["command-line"] + "\r\n"}
                    else:
                        on_command(request)
                        reply = {"return": {}}
                    stream.write(json.dumps(reply).encode() + b"\n")
                    stream.flush()

    def commands(self) -> list[str]:
        self._thread.join()
        self._server.close()
        return [request["execute"] for request in self.requests]


def test_a_hung_lane_s_monitor_is_asked_each_question_in_turn(tmp_path):
    qmp = FakeQmp(str(tmp_path / "qmp.sock"))
    answers = ask_monitor(str(tmp_path / "qmp.sock"), ("info registers", "x/2i $pc"))
    assert qmp.commands() == ["qmp_capabilities", "human-monitor-command", "human-monitor-command"]
    assert answers == "(info registers)\nanswer to info registers\n(x/2i $pc)\nanswer to x/2i $pc\n"


def test_a_monitor_that_is_not_there_is_reported_not_raised(tmp_path):
    assert "did not answer" in ask_monitor(str(tmp_path / "none.sock"), ("info registers",))


def _frozen_heartbeat(job: pathlib.Path) -> pathlib.Path:
    from kvmpy.nested.lane import FROZEN_AFTER

    heartbeat = job / HEARTBEAT_FILE
    heartbeat.touch()
    os.utime(heartbeat, (time.time() - FROZEN_AFTER - 1, time.time() - FROZEN_AFTER - 1))
    return heartbeat


def test_a_frozen_outer_vm_is_told_by_its_heartbeat_and_the_monitor_is_asked_where_it_is(tmp_path, monkeypatch):
    from kvmpy.nested import lane
    from kvmpy.nested.lane import _wait

    monkeypatch.setattr(lane, "REVIVAL_WAIT", 0.3)
    assert heartbeat_age(str(tmp_path)) is None  # the init has not started it: no verdict
    _frozen_heartbeat(tmp_path)
    qmp = FakeQmp(str(tmp_path / "qmp.sock"), connections=2)  # the questions, then the NMI
    running = subprocess.Popen(["sleep", "60"], stdin=subprocess.PIPE)
    try:
        started = time.monotonic()
        why = _wait(running, str(tmp_path), started, timeout=120, idle_timeout=None, last_line_at=[started],
                    revivals=[])
    finally:
        running.kill()
        running.wait()
        running.stdin.close()
    assert why.startswith("the outer VM froze 0 s in (no heartbeat for "), why
    assert "did not revive it" in why and "answer to info lapic" in why
    assert qmp.commands()[-1] == "inject-nmi"


def test_revival_steps_are_taken_in_turn_until_the_heartbeat_moves(tmp_path):
    from kvmpy.nested.lane import revive

    heartbeat = _frozen_heartbeat(tmp_path)
    taken = []
    steps = [("nothing", lambda: taken.append("nothing")),
             ("a poke", lambda: (taken.append("a poke"), heartbeat.touch())),
             ("never", lambda: taken.append("never"))]
    assert revive(str(tmp_path), steps, wait=0.5) == "a poke"
    assert taken == ["nothing", "a poke"]
    _frozen_heartbeat(tmp_path)
    assert revive(str(tmp_path), steps[:1], wait=0.3) is None
