# Raise #UD with an empty IDT: #UD -> #GP -> #DF -> triple fault, so the VM shuts down.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    lea rsi, [rip + message]
    call serial_puts
    ud2

message:
    .asciz "about to triple fault\n"

.include "lib64.inc"
