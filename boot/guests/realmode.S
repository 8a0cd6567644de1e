# A 16-bit real-mode guest, started at CS:IP = 0x1000:0000 as a BIOS would a boot sector.
.include "guest.inc"
START_MODE MODE_REAL
.intel_syntax noprefix
.code16
.text
.global _start
_start:
    mov ax, cs
    mov ds, ax
    lea si, message
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
    .asciz "real mode: 16-bit code printed this\n"
