# Stop the way Linux does when it cannot power the machine off: HLT with interrupts disabled.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    lea rsi, [rip + message]
    call serial_puts
1:  cli
    hlt
    jmp 1b

message:
    .asciz "halting with interrupts off\n"

.include "lib64.inc"
