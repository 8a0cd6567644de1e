"""The hardware-virtualization lane: kvmpy's KVM path tested on a host that has no VT-x/AMD-V.

QEMU's TCG emulates AMD-V well enough for Linux's `kvm_amd`: an outer VM (QEMU, `-cpu
EPYC,+svm,+npt`) boots Debian's stock kernel, loads `kvm_amd`, mounts this host's `/`
read-only over virtio-9p with a tmpfs overlay on top, `chroot`s into it and runs one command
there, where `/dev/kvm` is a real hardware-virtualization KVM. The command's output and exit
status come back to the caller.

    image.py   builds (once, cached) the outer kernel and its initramfs from Debian's packages
    lane.py    boots the outer VM, runs a command in it, returns output and status

`python boot/nested/run.py -- pytest -m kvm` is the command-line way in; the pytest marker
`nested` marks the outer tests that drive it.
"""

from .image import LaneImage, LaneUnavailable, ensure_lane_image
from .lane import LaneResult, lane_available, run_in_lane

__all__ = ["LaneImage", "LaneUnavailable", "ensure_lane_image", "LaneResult", "lane_available", "run_in_lane"]
