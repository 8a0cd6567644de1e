# The gdb stub's test guest: a short loop with named places to break at, a store to watch,
# and a verdict computed from what ran (3 calls of bump, so 3 unless a debugger changed it).
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start, loop_top, bump, after_loop, store_done, counter
_start:
    xor ebx, ebx
    mov ecx, 3
loop_top:
    call bump
    dec ecx
    jnz loop_top
after_loop:
    mov qword ptr [rip + counter], rbx
store_done:
    lea rsi, [rip + done_message]
    call serial_puts
    mov eax, ebx
    jmp verdict

bump:
    add ebx, 1
    ret

done_message:
    .asciz "gdb target done\n"

.balign 8
counter:
    .quad 0

.include "lib64.inc"
