"""PCI: one bus behind a configuration-mechanism-#1 host bridge, BARs placed by kvmpy as
firmware would, and each function's INTx pin routed to an IOAPIC input (described to the
guest by the MP table). The functions (virtio-pci, ...) bring their configuration space."""

from .config import Bar, ConfigSpace
from .host import PciFunction, PciHostBridge
from .root import PciRoot, PciRoute

__all__ = ["Bar", "ConfigSpace", "PciFunction", "PciHostBridge", "PciRoot", "PciRoute"]
