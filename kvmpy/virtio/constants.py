"""Numbers from the virtio 1.x specification that more than one virtio module needs.

Device-specific numbers (virtio-blk request types, virtio-net header layout, ...) live at the
top of the module that owns the device; what is here is shared by the transport, the virtqueue
code, the driver-side test mock and the devices.
"""

# --- virtio-mmio register offsets (virtio 1.x, section 4.2.2; transport version 2) -------
MAGIC_VALUE = 0x000
VERSION = 0x004
DEVICE_ID = 0x008
VENDOR_ID = 0x00C
DEVICE_FEATURES = 0x010
DEVICE_FEATURES_SEL = 0x014
DRIVER_FEATURES = 0x020
DRIVER_FEATURES_SEL = 0x024
QUEUE_SEL = 0x030
QUEUE_NUM_MAX = 0x034
QUEUE_NUM = 0x038
QUEUE_READY = 0x044
QUEUE_NOTIFY = 0x050
INTERRUPT_STATUS = 0x060
INTERRUPT_ACK = 0x064
STATUS = 0x070
QUEUE_DESC_LOW = 0x080
QUEUE_DESC_HIGH = 0x084
QUEUE_DRIVER_LOW = 0x090
QUEUE_DRIVER_HIGH = 0x094
QUEUE_DEVICE_LOW = 0x0A0
QUEUE_DEVICE_HIGH = 0x0A4
CONFIG_GENERATION = 0x0FC
CONFIG_SPACE = 0x100

MMIO_MAGIC = 0x7472_6976  # "virt" read as a little-endian 32-bit value
MMIO_VERSION = 2  # the modern (virtio 1.x) register layout; version 1 is legacy
VENDOR_ID_KVMPY = 0x504D_564B  # "KVMP"; the driver matches on device id, never on vendor

# --- Device status bits (section 2.1) -------------------------------------------------------
STATUS_ACKNOWLEDGE = 0x01
STATUS_DRIVER = 0x02
STATUS_DRIVER_OK = 0x04
STATUS_FEATURES_OK = 0x08
STATUS_DEVICE_NEEDS_RESET = 0x40
STATUS_FAILED = 0x80

# --- InterruptStatus bits (section 4.2.2) ---------------------------------------------------
INTERRUPT_USED_BUFFER = 0x1
INTERRUPT_CONFIG_CHANGE = 0x2

# --- Device-independent feature bits (section 6) -------------------------------------------
F_RING_INDIRECT_DESC = 28
F_RING_EVENT_IDX = 29
F_VERSION_1 = 32

# --- Device ids (section 5) -----------------------------------------------------------------
ID_NET = 1
ID_BLOCK = 2
ID_CONSOLE = 3
ID_RNG = 4

# --- Split virtqueue layout (section 2.7) ---------------------------------------------------
DESC_F_NEXT = 0x1
DESC_F_WRITE = 0x2
DESC_F_INDIRECT = 0x4
DESC_SIZE = 16  # le64 addr, le32 len, le16 flags, le16 next
USED_ELEM_SIZE = 8  # le32 id, le32 len
AVAIL_F_NO_INTERRUPT = 0x1
DESC_TABLE_ALIGN = 16
AVAIL_RING_ALIGN = 2
USED_RING_ALIGN = 4
MAX_QUEUE_SIZE = 32768  # the largest size a split queue can have (section 2.7)


def bit(feature: int) -> int:
    """The feature mask for feature bit number `feature`."""
    return 1 << feature
