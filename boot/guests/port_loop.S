# Write the benchmark port the command-line number of times from ring 3: every write is one
# port-I/O exit, so the loop measures the VMM's exit round trip.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    call cmdline_number
    mov rbx, rax
    lea rdi, [rip + user]
    lea rsi, [rip + user_stack_top]
    jmp enter_ring3

user:
    mov al, MARK_LOOP_START
    out POST_PORT, al
    mov rcx, rbx
    test rcx, rcx
    jz 2f
    mov dx, BENCH_PORT
1:  out dx, al
    dec rcx
    jnz 1b
2:  mov al, MARK_LOOP_END
    out POST_PORT, al
    xor eax, eax
    jmp verdict

.include "lib64.inc"
.balign 16
user_stack:
    .fill 4096, 1, 0
user_stack_top:
