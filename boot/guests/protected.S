# A 32-bit protected-mode guest with paging off, the state PVH kernels are entered in.
.include "guest.inc"
START_MODE MODE_PROTECTED
.intel_syntax noprefix
.code32
.text
.global _start
_start:
    lea esi, message
    mov dx, COM1_THR
    cld
1:  lodsb
    test al, al
    jz 2f
    out dx, al
    jmp 1b
2:  xor al, al
    out DEBUG_EXIT_PORT, al
3:  cli
    hlt
    jmp 3b

message:
    .asciz "protected mode: 32-bit code printed this\n"
