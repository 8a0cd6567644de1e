# The default guest of `kvmpy run`: greet through the UART, report success.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    lea rsi, [rip + greeting]
    call serial_puts
    xor eax, eax
    jmp verdict

greeting:
    .asciz "Hello from a kvmpy guest: 64-bit long mode, talking to you through an emulated 16550 UART.\n"

.include "lib64.inc"
