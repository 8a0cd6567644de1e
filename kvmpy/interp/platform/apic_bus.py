"""The APIC bus: interrupt messages between the local APICs and the IOAPIC.

Two kinds of sender put messages on it: a local APIC's ICR (inter-processor interrupts:
fixed, NMI, INIT, STARTUP...) and the IOAPIC's redirection table (device interrupts). The bus
picks the receiving local APICs by destination (physical APIC ID, or logical in the flat and
cluster models, or a shorthand) and hands each one the message. EOIs of level-triggered
interrupts travel the other way, from a local APIC to whoever listens (the IOAPIC).
"""

from __future__ import annotations

from collections.abc import Callable

# --- Delivery modes (ICR and redirection entries, bits 10-8) -------------------------------
FIXED = 0
LOWEST_PRIORITY = 1
SMI = 2
NMI = 4
INIT = 5
STARTUP = 6
EXTINT = 7

# --- Destination shorthands (ICR bits 19-18) -----------------------------------------------
NO_SHORTHAND = 0
SELF = 1
ALL_INCLUDING_SELF = 2
ALL_EXCLUDING_SELF = 3

BROADCAST = 0xFF


class ApicBus:
    def __init__(self):
        self.apics: list = []  # LocalApic objects, by index
        self.eoi_listeners: list[Callable[[int], None]] = []

    def attach(self, apic) -> None:
        self.apics.append(apic)

    def send(self, delivery_mode: int, vector: int, destination: int, logical: bool,
             level_triggered: bool = False, shorthand: int = NO_SHORTHAND, source=None) -> None:
        """Deliver one message to every local APIC it addresses."""
        if shorthand == SELF:
            targets = [source]
        elif shorthand == ALL_INCLUDING_SELF:
            targets = list(self.apics)
        elif shorthand == ALL_EXCLUDING_SELF:
            targets = [apic for apic in self.apics if apic is not source]
        else:
            targets = [apic for apic in self.apics if apic.matches(destination, logical)]
        if delivery_mode == LOWEST_PRIORITY and targets:
            targets = [min(targets, key=lambda apic: apic.tpr)]
        for apic in targets:
            if delivery_mode in (FIXED, LOWEST_PRIORITY):
                apic.accept_fixed(vector, level_triggered)
            elif delivery_mode == NMI:
                apic.accept_nmi()
            elif delivery_mode == INIT:
                apic.accept_init()
            elif delivery_mode == STARTUP:
                apic.accept_startup(vector)
            elif delivery_mode == EXTINT:
                apic.accept_extint()
            # SMI: there is no system-management mode to enter

    def end_of_interrupt(self, vector: int) -> None:
        for listener in self.eoi_listeners:
            listener(vector)
