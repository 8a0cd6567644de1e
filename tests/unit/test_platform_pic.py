"""The 8259A pair of the interpreted platform: initialisation, priorities, EOI, masks, ELCR."""

import pytest

from kvmpy.interp.platform.pic import (
    ELCR_MASTER,
    ELCR_SLAVE,
    MASTER_COMMAND,
    MASTER_DATA,
    SLAVE_COMMAND,
    SLAVE_DATA,
    PicPair,
)

MASTER_BASE = 0x20
SLAVE_BASE = 0x28
NON_SPECIFIC_EOI = 0x20
READ_IRR = 0x0A
READ_ISR = 0x0B
POLL = 0x0C


def initialised(auto_eoi: bool = False) -> tuple[PicPair, list[bool]]:
    """A pair set up the way Linux and the tiny guests do it: ICW1-ICW4, all unmasked."""
    outputs: list[bool] = []
    pic = PicPair(on_output=outputs.append)
    icw4 = 0x03 if auto_eoi else 0x01
    for command, data, base, cascade in ((MASTER_COMMAND, MASTER_DATA, MASTER_BASE, 0x04),
                                         (SLAVE_COMMAND, SLAVE_DATA, SLAVE_BASE, 0x02)):
        pic.write(command, 1, 0x11)
        pic.write(data, 1, base)
        pic.write(data, 1, cascade)
        pic.write(data, 1, icw4)
        pic.write(data, 1, 0x00)
    return pic, outputs


def eoi(pic: PicPair, command: int = MASTER_COMMAND) -> None:
    pic.write(command, 1, NON_SPECIFIC_EOI)


def test_init_sequence_sets_the_vector_base_and_an_edge_is_delivered_once():
    pic, outputs = initialised()
    pic.set_irq(3, True)
    assert pic.output and outputs == [True]
    assert pic.acknowledge() == MASTER_BASE + 3
    assert not pic.output and outputs == [True, False]
    pic.set_irq(3, True)  # still high: no new edge
    assert not pic.output
    eoi(pic)
    assert not pic.output


def test_icw1_clears_the_mask_and_the_in_service_register():
    pic, _ = initialised()
    pic.write(MASTER_DATA, 1, 0xFF)
    pic.set_irq(1, True)
    pic.write(MASTER_COMMAND, 1, 0x11)
    assert pic.read(MASTER_DATA, 1) == 0
    pic.write(MASTER_COMMAND, 1, READ_ISR)
    assert pic.read(MASTER_COMMAND, 1) == 0


def test_the_mask_reads_back_as_linux_probes_it():
    pic, _ = initialised()
    pic.write(MASTER_DATA, 1, 0xFF)
    pic.write(SLAVE_DATA, 1, 0xA5)
    assert (pic.read(MASTER_DATA, 1), pic.read(SLAVE_DATA, 1)) == (0xFF, 0xA5)


def test_lower_numbered_irqs_win_and_in_service_blocks_lower_priorities():
    pic, _ = initialised()
    pic.set_irq(5, True)
    pic.set_irq(3, True)
    assert pic.acknowledge() == MASTER_BASE + 3
    assert not pic.output  # IRQ 5 waits for IRQ 3's EOI
    pic.set_irq(1, True)
    assert pic.output  # but IRQ 1 outranks IRQ 3 and nests
    assert pic.acknowledge() == MASTER_BASE + 1
    eoi(pic)  # ends IRQ 1, the highest in service
    assert not pic.output
    eoi(pic)  # ends IRQ 3
    assert pic.acknowledge() == MASTER_BASE + 5


def test_a_masked_request_waits_and_is_delivered_when_unmasked():
    pic, _ = initialised()
    pic.write(MASTER_DATA, 1, 1 << 6)
    pic.set_irq(6, True)
    assert not pic.output
    pic.write(MASTER_DATA, 1, 0)
    assert pic.output and pic.acknowledge() == MASTER_BASE + 6


def test_level_triggered_lines_request_again_after_eoi_and_withdraw_when_low():
    pic, _ = initialised()
    pic.write(ELCR_SLAVE, 1, 1 << (11 - 8))
    pic.set_irq(11, True)
    assert pic.acknowledge() == SLAVE_BASE + 3
    eoi(pic, SLAVE_COMMAND)
    eoi(pic)
    assert pic.output  # the line is still high
    pic.set_irq(11, False)
    assert not pic.slave.output
    # The master latched the cascade's edge: the acknowledge finds nothing and is spurious IRQ 15.
    assert pic.acknowledge() == SLAVE_BASE + 7


def test_an_edge_on_a_line_held_high_is_not_repeated_but_a_level_is():
    pic, _ = initialised()
    pic.write(ELCR_MASTER, 1, 1 << 5)
    pic.set_irq(5, True)
    pic.set_irq(7, True)
    assert pic.acknowledge() == MASTER_BASE + 5
    eoi(pic)
    assert pic.acknowledge() == MASTER_BASE + 5  # level 5 again, ahead of 7
    eoi(pic)
    pic.set_irq(5, False)
    assert pic.acknowledge() == MASTER_BASE + 7
    eoi(pic)
    assert not pic.output


def test_elcr_bits_for_irq_0_1_2_8_13_cannot_be_set():
    pic, _ = initialised()
    pic.write(ELCR_MASTER, 1, 0xFF)
    pic.write(ELCR_SLAVE, 1, 0xFF)
    assert (pic.read(ELCR_MASTER, 1), pic.read(ELCR_SLAVE, 1)) == (0xF8, 0xDE)


def test_slave_interrupts_cascade_through_master_input_2():
    pic, _ = initialised()
    pic.set_irq(12, True)
    assert pic.output
    assert pic.acknowledge() == SLAVE_BASE + 4
    pic.write(MASTER_COMMAND, 1, READ_ISR)
    pic.write(SLAVE_COMMAND, 1, READ_ISR)
    assert (pic.read(MASTER_COMMAND, 1), pic.read(SLAVE_COMMAND, 1)) == (1 << 2, 1 << 4)
    pic.set_irq(9, True)  # higher priority on the slave, but master input 2 is in service
    assert not pic.output
    eoi(pic, SLAVE_COMMAND)
    eoi(pic)
    assert pic.acknowledge() == SLAVE_BASE + 1


def test_a_request_withdrawn_before_the_acknowledge_is_spurious_irq_7():
    pic, _ = initialised()
    pic.write(ELCR_MASTER, 1, 1 << 4)
    pic.set_irq(4, True)
    pic.set_irq(4, False)
    assert pic.acknowledge() == MASTER_BASE + 7
    pic.write(MASTER_COMMAND, 1, READ_ISR)
    assert pic.read(MASTER_COMMAND, 1) == 0  # a spurious IRQ 7 is not put in service


def test_auto_eoi_leaves_nothing_in_service():
    pic, _ = initialised(auto_eoi=True)
    pic.set_irq(2 + 1, True)
    assert pic.acknowledge() == MASTER_BASE + 3
    pic.write(MASTER_COMMAND, 1, READ_ISR)
    assert pic.read(MASTER_COMMAND, 1) == 0
    pic.set_irq(4, True)
    assert pic.output


def test_ocw3_selects_irr_or_isr_for_reads():
    pic, _ = initialised()
    pic.write(MASTER_DATA, 1, 0xFF)
    pic.set_irq(6, True)
    pic.write(MASTER_COMMAND, 1, READ_IRR)
    assert pic.read(MASTER_COMMAND, 1) == 1 << 6
    pic.write(MASTER_COMMAND, 1, READ_ISR)
    assert pic.read(MASTER_COMMAND, 1) == 0


def test_poll_mode_reads_acknowledge_the_pending_level():
    pic, _ = initialised()
    pic.set_irq(5, True)
    pic.write(MASTER_COMMAND, 1, POLL)
    assert pic.read(MASTER_COMMAND, 1) == 0x80 | 5
    assert not pic.output
    pic.write(MASTER_COMMAND, 1, POLL)
    assert pic.read(MASTER_COMMAND, 1) == 0


def test_specific_eoi_ends_the_named_level_only():
    pic, _ = initialised()
    pic.set_irq(6, True)
    pic.acknowledge()
    pic.set_irq(2 + 2, True)
    pic.acknowledge()  # IRQ 4 nests over 6
    pic.write(MASTER_COMMAND, 1, 0x60 | 6)  # specific EOI for 6
    pic.write(MASTER_COMMAND, 1, READ_ISR)
    assert pic.read(MASTER_COMMAND, 1) == 1 << 4


def test_rotation_on_eoi_makes_the_ended_level_the_lowest_priority():
    pic, _ = initialised()
    pic.set_irq(1, True)
    assert pic.acknowledge() == MASTER_BASE + 1
    pic.write(MASTER_COMMAND, 1, 0xA0)  # rotate on non-specific EOI: IRQ 1 becomes the lowest
    pic.set_irq(1, False)
    pic.set_irq(1, True)
    pic.set_irq(6, True)
    assert pic.acknowledge() == MASTER_BASE + 6


def test_set_priority_command_chooses_the_lowest_priority_level():
    pic, _ = initialised()
    pic.write(MASTER_COMMAND, 1, 0xC0 | 4)  # IRQ 4 lowest, so IRQ 5 highest
    pic.set_irq(0, True)
    pic.set_irq(5, True)
    assert pic.acknowledge() == MASTER_BASE + 5


@pytest.mark.parametrize("single_icw", [False, True])
def test_icw3_is_skipped_for_a_single_pic(single_icw):
    pic = PicPair()
    pic.write(MASTER_COMMAND, 1, 0x13 if single_icw else 0x11)
    pic.write(MASTER_DATA, 1, 0x40)
    if not single_icw:
        pic.write(MASTER_DATA, 1, 0x04)
    pic.write(MASTER_DATA, 1, 0x01)
    pic.write(MASTER_DATA, 1, 0xFB)  # OCW1 now: everything but input 2 masked
    assert pic.read(MASTER_DATA, 1) == 0xFB
