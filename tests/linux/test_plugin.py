"""kvmpy's pytest plugin, used the way a kernel project would: a separate test tree and pytest run."""

import pytest

pytestmark = pytest.mark.linux

OUTSIDE_TESTS = '''
def test_kernel_version(kvmpy_linux):
    result = kvmpy_linux.run("uname -r")
    assert result.status == 0
    assert result.output.strip().startswith("6.1")

def test_that_fails(kvmpy_linux):
    result = kvmpy_linux.run("echo from-the-guest; exit 1")
    assert result.status == 0
'''


def test_plugin_boots_the_configured_kernel_and_reports_consoles(pytester, test_kernel, test_initrd):
    pytester.makepyfile(test_outside=OUTSIDE_TESTS)
    result = pytester.runpytest_subprocess(f"--kvmpy-kernel={test_kernel}", f"--kvmpy-initrd={test_initrd}",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*kvmpy console ('echo from-the-guest; exit 1')*", "*from-the-guest*"])


def test_plugin_skips_clearly_without_a_kernel(pytester):
    pytester.makepyfile(test_outside="def test_needs_kernel(kvmpy_linux):\n    pass\n")
    result = pytester.runpytest_subprocess("-rs", "-p", "no:cacheprovider")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*no kernel configured for kvmpy_linux*"])
