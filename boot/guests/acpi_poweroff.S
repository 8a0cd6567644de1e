# Power off the way an ACPI kernel does: SLP_TYP = the \_S5 value, and SLP_EN, in PM1a_CNT.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set PM1_CONTROL, ACPI_PM_PORT + 4
.set SLEEP_S5, (5 << 10) | (1 << 13)
.text
.global _start
_start:
    lea rsi, [rip + message]
    call serial_puts
    mov dx, PM1_CONTROL
    mov ax, SLEEP_S5
    out dx, ax
1:  hlt
    jmp 1b

message:
    .asciz "powering off through ACPI\n"

.include "lib64.inc"
