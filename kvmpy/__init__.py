"""kvmpy: a thin virtual machine monitor in Python on Linux /dev/kvm."""

__version__ = "0.1.0"
