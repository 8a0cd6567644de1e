# String port I/O: `rep outsb` a line to the UART, `rep insb` the scratch register back.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set SCRATCH_VALUE, 0x5a
.set READ_COUNT, 8
.text
.global _start
_start:
    lea rsi, [rip + line]
    mov rcx, line_end - line
    mov dx, COM1_THR
    cld
    rep outsb
    mov al, SCRATCH_VALUE
    mov dx, COM1_SCRATCH
    out dx, al
    lea rdi, [rip + buffer]
    mov rcx, READ_COUNT
    rep insb
    lea rsi, [rip + buffer]
    mov rcx, READ_COUNT
1:  lodsb
    cmp al, SCRATCH_VALUE
    jne 2f
    loop 1b
    xor eax, eax
    jmp verdict
2:  mov al, 1
    jmp verdict

line:
    .ascii "string I/O: rep outsb reached the UART\n"
line_end:
buffer:
    .fill READ_COUNT, 1, 0

.include "lib64.inc"
