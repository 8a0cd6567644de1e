import base64

from kvmpy.linux import command_cmdline, command_output

CONSOLE = """[    1.0] Run /init as init process
KVMPY-CMD-BEGIN
Linux (none) 6.1.0 x86_64
two lines
KVMPY-CMD-END status=7
[    2.0] reboot: Power down
"""


def test_output_between_the_markers_and_the_status():
    assert command_output(CONSOLE) == ("Linux (none) 6.1.0 x86_64\ntwo lines\n", 7)


def test_output_without_an_end_marker_has_no_status():
    output, status = command_output("KVMPY-CMD-BEGIN\npartial out")
    assert (output, status) == ("partial out", None)


def test_no_begin_marker_means_nothing_ran():
    assert command_output("kernel panic") == ("", None)


def test_end_marker_after_output_without_newline():
    assert command_output("KVMPY-CMD-BEGIN\nno newlineKVMPY-CMD-END status=0\n") == ("no newline", 0)


def test_the_command_travels_base64_encoded():
    cmdline = command_cmdline("echo 'a b' | wc -c", "console=ttyS0")
    prefix, encoded = cmdline.split(" kvmpy.cmd=")
    assert prefix == "console=ttyS0" and base64.b64decode(encoded) == b"echo 'a b' | wc -c"
