"""Every fixed guest-physical address, port and IRQ kvmpy uses, in one place.

The x86 machine kvmpy builds is a PC without a BIOS: the VMM writes the boot structures
(GDT, identity page tables, zero page, command line, MP table) itself and starts the vCPU
in the mode the image wants.
"""

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
TiB = 1 << 40
PAGE_SIZE = 4 * KiB

# --- Guest-physical memory map ------------------------------------------------------------
# RAM starts at 0; anything that does not fit below the MMIO hole continues above 4 GiB.
MMIO_HOLE_START = 3 * GiB
MMIO_HOLE_END = 4 * GiB

# Low-memory boot structures written by the VMM (all below the 640 KiB conventional limit).
BOOT_GDT_ADDR = 0x500  # GDT for the protected and long mode starts (see vcpu/modes.py)
BOOT_IDT_ADDR = 0x600  # empty IDT: an early exception then shuts the guest down (triple fault)
BOOT_TSS_ADDR = 0x1000  # 64-bit TSS + I/O bitmap (to 0x3069): RSP0 and port access for ring 3
BOOT_INFO_ADDR = 0x4000  # a boot protocol's information structure: multiboot info or PVH start info
BOOT_INFO_MODULES_ADDR = 0x4100  # its module list (--initrd)
BOOT_INFO_MEMORY_MAP_ADDR = 0x4200  # its memory map
BOOT_INFO_STRINGS_ADDR = 0x4800  # the strings it points to (loader and module names), to 0x5000
BOOT_INFO_END = 0x5000
ZERO_PAGE_ADDR = 0x7000  # Linux boot_params
BOOT_STACK_TOP = 0x8FF0  # initial RSP for images started in protected or long mode
PML4_ADDR = 0x9000  # identity page tables: PML4, one PDPT, then PDs of 2 MiB pages
PDPT_ADDR = 0xA000
PD_ADDR = 0xB000
IDENTITY_MAP_SIZE = 4 * GiB  # covers low RAM and the MMIO hole, so tiny guests reach devices
CMDLINE_ADDR = 0x20000
CMDLINE_MAX = 4 * KiB
MPTABLE_ADDR = 0x9FC00  # MP floating pointer + table in the EBDA, where Linux scans for it
EBDA_START = 0x9FC00
LOW_RAM_END = 0xA0000  # start of the legacy VGA/ROM area, reported as reserved in e820
ACPI_TABLES_ADDR = 0xE0000  # the RSDP (where an OS scans the BIOS area for it), then every table
ACPI_TABLES_END = 0x100000
HIGH_MEMORY = 1 * MiB  # protected-mode kernels and long-mode images load here
REAL_MODE_LOAD_ADDR = 0x10000  # real-mode images start at CS:IP = 0x1000:0000
REAL_MODE_SEGMENT = REAL_MODE_LOAD_ADDR >> 4

# KVM on Intel needs three pages of guest-physical space for real-mode emulation and an
# identity-mapped page table; put them just below the MMIO hole's top, out of RAM's way.
KVM_TSS_ADDR = 0xFFFB_D000
KVM_IDENTITY_MAP_ADDR = 0xFFFB_C000

# --- MMIO windows (inside the hole) -------------------------------------------------------
PCI_MMIO_BASE = 0xC000_0000  # where kvmpy, as firmware would, places PCI BARs
PCI_MMIO_SIZE = 0x1000_0000
VIRTIO_MMIO_BASE = 0xD000_0000
VIRTIO_MMIO_SIZE = 0x1000
VIRTIO_MMIO_MAX_DEVICES = 16
TEST_DEVICE_MMIO_BASE = 0xDF00_0000  # the MMIO test device the tiny guests talk to
TEST_DEVICE_MMIO_SIZE = 0x1000
IOAPIC_ADDR = 0xFEC0_0000
IOAPIC_SIZE = 0x100  # IOREGSEL at +0, IOWIN at +0x10 (KVM decodes the same 256 bytes)
LAPIC_ADDR = 0xFEE0_0000  # each vCPU sees its own local APIC here (relocatable by IA32_APIC_BASE)
LAPIC_SIZE = 0x1000

# --- Port I/O -----------------------------------------------------------------------------
# The interrupt controllers and the PIT are KVM's in-kernel devices under --accel kvm, and
# kvmpy's software models (kvmpy/interp/platform) under --accel interp.
PIC_MASTER_PORT = 0x20  # 8259A command at +0, data (mask) at +1
PIC_SLAVE_PORT = 0xA0
PIC_PORT_LENGTH = 2
ELCR_PORT = 0x4D0  # edge/level control registers, one byte per 8259A
ELCR_PORT_LENGTH = 2
PIT_PORT = 0x40
PIT_PORT_LENGTH = 4  # channels 0-2, then the mode/command register
I8042_DATA_PORT = 0x60
I8042_COMMAND_PORT = 0x64  # same device as the data port, its register offset 4
PC_SPEAKER_PORT = 0x61  # PIT channel 2 gate/output (system control port B), between the two
RTC_PORT = 0x70  # index at +0, data at +1
RTC_PORT_LENGTH = 2
POST_PORT = 0x80  # firmware POST codes; logged at debug level
DEBUG_EXIT_PORT = 0xF4  # a guest writes its verdict here; the VM stops with that exit code
BOOT_TIMER_PORT = 0xF5  # a guest writes here once user space starts; the VMM records the time
BENCH_PORT = 0xF6  # a do-nothing device: the exit-cost benchmark's guest writes here in a loop
COM1_PORT = 0x3F8
COM_PORT_LENGTH = 8
PCI_CONFIG_PORT = 0xCF8  # configuration mechanism #1: address at +0, data at +4..+7
PCI_CONFIG_PORT_LENGTH = 8
FW_CFG_PORT = 0x510  # QEMU's fw_cfg: selector at +0, data at +1 (devices/fw_cfg.py)
PVPANIC_PORT = 0x505  # the ISA pvpanic device (ACPI QEMU0001), beside the pvpanic-pci function
ACPI_PM_PORT = 0x600  # the FADT's PM1a event and control blocks and its reset register (acpi/pm.py)
ACPI_PM_PORT_LENGTH = 16

# --- ISA IRQs (routed through KVM's in-kernel PIC and IOAPIC) ------------------------------
PIT_IRQ = 0
I8042_KEYBOARD_IRQ = 1
COM1_IRQ = 4
RTC_IRQ = 8
ACPI_SCI_IRQ = 9  # ACPI's system control interrupt: level-triggered, so no virtio device shares it
VIRTIO_IRQ_FIRST = 5  # virtio devices get 5, 6, 7, 10, 11, 14, 15, 16 ... (see virtio_irqs)
IOAPIC_PINS = 24


def virtio_irqs():
    """IRQ numbers free for virtio devices, in allocation order."""
    taken = {PIT_IRQ, I8042_KEYBOARD_IRQ, 2, 3, COM1_IRQ, RTC_IRQ, ACPI_SCI_IRQ, 12, 13}
    return [irq for irq in range(VIRTIO_IRQ_FIRST, IOAPIC_PINS) if irq not in taken]


# --- Segment selectors in the boot GDT ----------------------------------------------------
# 0x10/0x18 are what Linux's boot protocol calls __BOOT_CS/__BOOT_DS for the 64-bit entry.
GDT_KERNEL_CODE32 = 0x08
GDT_KERNEL_CODE64 = 0x10
GDT_KERNEL_DATA = 0x18
GDT_USER_CODE64 = 0x20  # RPL 3 added when loaded: 0x23
GDT_USER_DATA = 0x28  # RPL 3 added when loaded: 0x2b
GDT_TSS = 0x30  # a 16-byte system descriptor (two slots)
GDT_ENTRIES = 8
