# Drive ACPI (read PM1a_CNT, as an ACPI kernel does at start-up), then halt with interrupts
# disabled instead of powering off: kvmpy must report a halt, not a power-off.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set PM1_CONTROL, ACPI_PM_PORT + 4
.text
.global _start
_start:
    mov dx, PM1_CONTROL
    in ax, dx
    lea rsi, [rip + message]
    call serial_puts
1:  cli
    hlt
    jmp 1b

message:
    .asciz "halting with interrupts off after using ACPI\n"

.include "lib64.inc"
