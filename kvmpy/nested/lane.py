"""Run one command inside the lane's outer VM, where /dev/kvm is a hardware-virtualization KVM.

QEMU (TCG, `-cpu EPYC,+svm,+npt`) boots the cached outer kernel; its /init chroots into this
host's `/` (read-only 9p, tmpfs overlay: writes vanish with the VM) and runs the command in
the caller's working directory with the caller's environment. A second, writable 9p share
(the job directory, at the same path inside) carries the command script in and the exit
status out, so the status is exact whatever the console shows.

Everything is emulated by TCG underneath, so inside the lane the KVM path is functionally
real (VMRUN, nested paging, exits, ioeventfd/irqfd, the in-kernel irqchip) but slow: compare
figures measured there with each other, never with figures from the outer host.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Callable, NamedTuple

from ..linux import marked_output
from .image import HEARTBEAT_FILE, HEARTBEAT_INTERVAL, HOST_ROOT_TAG, JOB_TAG, LaneUnavailable, ensure_lane_image
from .qmp import Qmp, QmpError

QEMU = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"
QEMU_ENV = "KVMPY_LANE_QEMU"  # another QEMU binary for the lane (default: qemu-system-x86_64 on PATH)
# AMD-V with nested paging, which TCG emulates well enough for kvm_amd; less the EPYC features
# TCG does not implement (QEMU would warn about each and drop it anyway).
CPU_MODEL = ("EPYC,+svm,+npt,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,"
             "-nrip-save,-xsavec")
# One outer CPU on one TCG thread: as fast as two here (the lane is exit-bound), and the
# freeze described at FROZEN_AFTER came more often with two outer CPUs and multi-threaded TCG.
TCG_THREADS = "single"
DEFAULT_MEM = "4G"
DEFAULT_CPUS = 1
DEFAULT_TIMEOUT = 1800.0
EXIT_TIMEOUT = 124
BEGIN = "KVMPY-LANE-BEGIN"
END = re.compile(r"KVMPY-LANE-END status=(\d+)")
FAILED = re.compile(r"KVMPY-LANE-FAILED (.*)")
# Variables that describe the caller's shell or test rather than the command's environment.
UNPASSED_ENV = ("PWD", "OLDPWD", "SHLVL", "_", "PYTEST_CURRENT_TEST", "PYTEST_XDIST_WORKER")
INSIDE_MARKER_ENV = "KVMPY_LANE"  # set to 1 for the command: tests can tell they are in the lane


class LaneResult(NamedTuple):
    status: int | None  # the command's exit status; None when it never finished
    output: str  # what the command printed (console between the init's markers)
    console: str  # everything the outer VM printed
    seconds: float  # QEMU start to exit
    message: str  # why there is no status, when there is none
    timed_out: bool  # stopped: for `timeout`, silence longer than `idle_timeout`, or a freeze
    revivals: tuple[str, ...] = ()  # each freeze the lane revived: when, how, where the CPU was

    @property
    def outer_kernel_lines(self) -> list[str]:
        """The outer kernel's kvm/SVM log lines, as the init echoed them."""
        return [line.split(" ", 1)[1] for line in self.console.splitlines() if line.startswith("KVMPY-LANE-KVM ")]


def lane_available() -> tuple[bool, str]:
    """Whether the lane can run here, and if not, why (one line)."""
    if sys.platform != "linux":
        return False, "the lane needs Linux"
    if qemu_binary() is None:
        return False, f"{os.environ.get(QEMU_ENV) or QEMU} not found (apt-get install {QEMU_PACKAGE})"
    try:
        ensure_lane_image(sys.stderr)
    except LaneUnavailable as why:
        return False, str(why)
    return True, ""


def qemu_binary() -> str | None:
    """The QEMU the lane starts: $KVMPY_LANE_QEMU, else qemu-system-x86_64 on PATH (None: none)."""
    return shutil.which(os.environ.get(QEMU_ENV) or QEMU)


def share_tag(index: int) -> str:
    return f"share{index}"


def qemu_command(qemu: str, kernel: str, initrd: str, job: str, mem: str, cpus: int,
                 writable: tuple[str, ...] = (), kernel_log: bool = False) -> list[str]:
    """The QEMU invocation: the host's / read-only, the job directory and `writable` read-write
    over 9p; its monitor on a socket in the job directory, asked where the CPU is if the lane hangs."""
    shares = []
    for index, path in enumerate(writable):
        shares += ["-fsdev", f"local,id={share_tag(index)},path={path},security_model=none",
                   "-device", f"virtio-9p-pci,fsdev={share_tag(index)},mount_tag={share_tag(index)}"]
    return [
        qemu, "-accel", f"tcg,thread={TCG_THREADS}", "-M", "pc", "-cpu", CPU_MODEL, "-smp", str(cpus), "-m", mem,
        "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot",
        "-monitor", "none", "-qmp", f"unix:{monitor_path(job)},server=on,wait=off",
        "-kernel", kernel, "-initrd", initrd,
        # nokaslr: the monitor's addresses of a frozen CPU map to symbols; nowatchdog: a revived
        # outer kernel would otherwise print its soft-lockup report into the command's output
        "-append", f"console=ttyS0 {'' if kernel_log else 'quiet loglevel=1 '}panic=-1 nokaslr nowatchdog "
                   f"kvmpy.lane.job={job}",
        "-fsdev", f"local,id=hostroot,path=/,readonly=on,security_model=none,multidevs=remap",
        "-device", f"virtio-9p-pci,fsdev=hostroot,mount_tag={HOST_ROOT_TAG}",
        "-fsdev", f"local,id=job,path={job},security_model=none",
        "-device", f"virtio-9p-pci,fsdev=job,mount_tag={JOB_TAG}",
        *shares,
    ]


def monitor_path(job: str) -> str:
    return os.path.join(job, "qmp.sock")


def command_script(argv: list[str], cwd: str, env: dict[str, str]) -> str:
    """The shell script the init runs in the chroot: environment, directory, command."""
    exports = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items())
                      if name.isidentifier() and name not in UNPASSED_ENV)
    return (f"{exports}export {INSIDE_MARKER_ENV}=1\n"
            f"cd {shlex.quote(cwd)} || exit 125\n"
            f"exec {shlex.join(argv)}\n")


def parse_console(console: str) -> tuple[str, int | None]:
    """The command's output between the markers, and the status the init printed."""
    return marked_output(console, BEGIN, END)


def run_in_lane(argv: list[str], *, cwd: str | None = None, env: dict[str, str] | None = None,
                timeout: float = DEFAULT_TIMEOUT, mem: str = DEFAULT_MEM, cpus: int = DEFAULT_CPUS,
                writable: tuple[str, ...] = (), kernel_log: bool = False, idle_timeout: float | None = None,
                echo: Callable[[str], None] | None = None, stream=sys.stderr) -> LaneResult:
    """Boot the outer VM, run `argv` in it, and return what happened.

    Inside, the host's / is read-only under a throw-away overlay; each directory of `writable`
    is the host's own, at the same path (results the command writes there come back).
    `kernel_log` puts the outer kernel's messages on the console too (they interleave with
    the command's output). `idle_timeout` stops the lane when its console has been silent that
    long: for a command that prints as it goes, the sign that the outer VM hung.
    `echo` gets each console line as it arrives (the outer kernel's few lines, then the
    command's output). Raises LaneUnavailable where QEMU or the outer image cannot be had.
    """
    if not argv:
        raise ValueError("no command to run in the lane")
    qemu_path = qemu_binary()
    if qemu_path is None:
        raise LaneUnavailable(f"{os.environ.get(QEMU_ENV) or QEMU} not found (apt-get install {QEMU_PACKAGE})")
    image = ensure_lane_image(stream)
    with tempfile.TemporaryDirectory(prefix="kvmpy-lane-") as job:
        with open(os.path.join(job, "command.sh"), "w") as script:
            script.write(command_script(argv, cwd or os.getcwd(), dict(os.environ if env is None else env)))
        writable = tuple(os.path.realpath(path) for path in writable)
        with open(os.path.join(job, "shares"), "w") as shares:
            shares.writelines(f"{share_tag(index)} {path}\n" for index, path in enumerate(writable))
        started = time.monotonic()
        qemu = subprocess.Popen(qemu_command(qemu_path, str(image.kernel), str(image.initrd), job, mem, cpus,
                                             writable, kernel_log),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines: list[str] = []
        last_line_at = [started]
        reader = threading.Thread(target=_read_console, args=(qemu.stdout, lines, echo, last_line_at), daemon=True)
        reader.start()
        why_stopped = ""
        revivals: list[str] = []
        try:
            why_stopped = _wait(qemu, job, started, timeout, idle_timeout, last_line_at, revivals)
        finally:  # on a timeout, and when the caller is interrupted: no QEMU left behind
            if qemu.poll() is None:
                qemu.kill()
                qemu.wait()
            qemu.stdin.close()
        reader.join()
        seconds = time.monotonic() - started
        console = "".join(lines)
        output, printed_status = parse_console(console)
        status = _read_status(job)
    if status is None:
        status = printed_status
    message = why_stopped
    if not why_stopped and status is None:
        failure = FAILED.search(console)
        message = (failure.group(1) if failure else
                   f"the outer VM stopped without a status (QEMU exit {qemu.returncode})")
    return LaneResult(status, output, console, seconds, message, bool(why_stopped), tuple(revivals))


def _wait(qemu: subprocess.Popen, job: str, started: float, timeout: float, idle_timeout: float | None,
          last_line_at: list[float], revivals: list[str]) -> str:
    """Wait for QEMU to exit; return why it had to be stopped instead ('' if it exited).
    An outer VM whose heartbeat stops is revived if it can be (each revival noted)."""
    deadline = started + timeout
    while True:
        now = time.monotonic()
        if idle_timeout is not None and now - last_line_at[0] > idle_timeout:
            return f"the lane printed nothing for {idle_timeout:.0f} s (the outer VM is taken to have hung)"
        if now >= deadline:
            return f"the lane was still running after {timeout:.0f} s"
        silent = heartbeat_age(job)
        if silent is not None and silent > FROZEN_AFTER and qemu.poll() is None:
            where = ask_monitor(monitor_path(job), HANG_QUESTIONS)
            how = revive(job, _revival_steps(qemu, job))
            if how is None:
                return (f"the outer VM froze {now - started:.0f} s in (no heartbeat for {silent:.0f} s; "
                        f"{' and '.join(name for name, _ in REVIVALS)} did not revive it); "
                        f"the outer CPU then:\n{where}")
            rip = re.search(r"RIP=\S+ RFL=\S+.*HLT=\d", where)
            revivals.append(f"{now - started:.0f} s in, by {how} ({rip.group(0) if rip else 'RIP unknown'})")
        try:
            qemu.wait(min(deadline - now, 1.0))
            return ""
        except subprocess.TimeoutExpired:
            continue


# The outer VM freezes now and then (QEMU 7.2 and 10.0 alike): its CPU halted in the outer
# kernel's idle loop, or inside a kvmpy guest that spins waiting for its other vCPU, while the
# outer kernel's timer interrupt sits in the outer local APIC's IRR and is never taken (QEMU's
# monitor shows it: HANG_QUESTIONS). Stop/cont did not revive one; what the host tries, in
# turn, is a new interrupt from outside: a byte on the outer serial line (its receive
# interrupt), then an NMI.
REVIVALS = (("a byte on the serial line", "serial"), ("an NMI", "inject-nmi"))
FROZEN_AFTER = 15 * HEARTBEAT_INTERVAL  # seconds without a heartbeat: the outer VM froze
REVIVAL_WAIT = 5 * HEARTBEAT_INTERVAL  # seconds for a heartbeat after each revival step


def heartbeat_age(job: str) -> float | None:
    """Seconds since the outer VM's init last touched the heartbeat (None: not started yet)."""
    try:
        return time.time() - os.stat(os.path.join(job, HEARTBEAT_FILE)).st_mtime
    except OSError:
        return None


def _revival_steps(qemu: subprocess.Popen, job: str) -> list[tuple[str, Callable[[], None]]]:
    def serial() -> None:
        qemu.stdin.write(b"\n")
        qemu.stdin.flush()

    def nmi() -> None:
        with Qmp(monitor_path(job)) as qmp:
            qmp.execute("inject-nmi")

    actions = {"serial": serial, "inject-nmi": nmi}
    return [(name, actions[key]) for name, key in REVIVALS]


def revive(job: str, steps: list[tuple[str, Callable[[], None]]], wait: float | None = None) -> str | None:
    """Take `steps` in turn until the heartbeat moves (waiting up to `wait` s, by default
    REVIVAL_WAIT, after each); the name of the step that worked, or None."""
    wait = REVIVAL_WAIT if wait is None else wait
    frozen_at = heartbeat_age(job)
    for name, step in steps:
        try:
            step()
        except (OSError, QmpError):
            continue  # QEMU went away, or refused: the next step, or the verdict "frozen"
        give_up = time.monotonic() + wait
        while time.monotonic() < give_up:
            age = heartbeat_age(job)
            if age is not None and frozen_at is not None and age < frozen_at - 1:
                return name
            time.sleep(0.2)  # polling the heartbeat file: there is nothing to wait on
    return None


# What the monitor is asked about an outer VM that froze: where its CPU is (in the outer
# kernel, or in the kvmpy guest: its RIP and code tell; the outer kernel runs without KASLR so
# its addresses are the same every boot), its local APIC (a timer interrupt pending in IRR and
# not taken is the known freeze), and where the CPU is a moment later.
HANG_QUESTIONS = ("info registers", "x/12i $pc", "info lapic", "info registers")


def ask_monitor(path: str, questions: tuple[str, ...], timeout: float = 5.0) -> str:
    """The human-monitor answers to `questions`, or why QEMU could not be asked."""
    try:
        with Qmp(path, timeout) as qmp:
            answers = []
            for index, question in enumerate(questions):
                if index:
                    time.sleep(0.3)  # the sampling interval: does the CPU move between the samples?
                answers.append(f"({question})\n{qmp.human(question)}")
            return "".join(answers)
    except (OSError, ValueError, QmpError) as why:
        return f"(QEMU's monitor did not answer: {why})"


def _read_console(pipe, lines: list[str], echo, last_line_at: list[float]) -> None:
    for raw in pipe:
        line = raw.decode(errors="replace").replace("\r\n", "\n").replace("\r", "")
        last_line_at[0] = time.monotonic()
        lines.append(line)
        if echo is not None:
            echo(line)
    pipe.close()


def _read_status(job: str) -> int | None:
    try:
        with open(os.path.join(job, "status")) as file:
            return int(file.read().strip())
    except (OSError, ValueError):
        return None


def main(argv: list[str] | None = None) -> int:
    """`python boot/nested/run.py [--mem 4G] [--cpus 2] [--timeout S] [--writable DIR] -- COMMAND...`:
    exit status the command's; 124 when the lane timed out, 1 when it died without a status,
    2 when it cannot run here (the reason on stderr)."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="boot/nested/run.py",
        description="Run COMMAND inside the hardware-virtualization lane (AMD-V nested in QEMU TCG), "
                    "in this directory with this environment; exit with its status.")
    parser.add_argument("--mem", default=DEFAULT_MEM, help="outer VM memory (default %(default)s)")
    parser.add_argument("--cpus", type=int, default=DEFAULT_CPUS, help="outer VM CPUs (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="stop the lane after this many seconds, exit 124 (default %(default)s)")
    parser.add_argument("--quiet", action="store_true", help="print only the command's output")
    parser.add_argument("--kernel-log", action="store_true",
                        help="show the outer kernel's messages too (by default only its kvm lines)")
    parser.add_argument("--writable", action="append", default=[], metavar="DIR",
                        help="share this host directory writable at the same path (repeatable); "
                             "everything else the command writes is discarded")
    parser.add_argument("--prepare", action="store_true",
                        help="only build (or find in the cache) the outer kernel and initramfs, print their paths")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="the command (after --)")
    args = parser.parse_args(argv)
    if args.prepare:
        try:
            image = ensure_lane_image(sys.stderr)
        except LaneUnavailable as why:
            print(f"kvmpy lane: unavailable: {why}", file=sys.stderr)
            return 2
        print(f"{image.kernel}\n{image.initrd}")
        return 0
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    inside = [False]

    def echo(line: str) -> None:
        if line.startswith(BEGIN):
            inside[0] = True
        elif END.match(line):
            inside[0] = False
        if inside[0] and not line.startswith(BEGIN) or not args.quiet:
            sys.stdout.write(line)
            sys.stdout.flush()

    try:
        result = run_in_lane(command, timeout=args.timeout, mem=args.mem, cpus=args.cpus,
                             writable=tuple(args.writable), kernel_log=args.kernel_log, echo=echo)
    except LaneUnavailable as why:
        print(f"kvmpy lane: unavailable: {why}", file=sys.stderr)
        return 2
    if result.status is None or result.timed_out:
        print(f"kvmpy lane: {result.message}", file=sys.stderr)
        return EXIT_TIMEOUT if result.timed_out else 1
    return result.status
