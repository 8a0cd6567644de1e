# Execute `popcnt` at ring 0 the command-line number of times between two POST marks: where
# KVM cannot emulate it (PVM), every one is a round trip through kvmpy's fallback interpreter.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    call cmdline_number
    mov rdx, rax
    mov al, MARK_LOOP_START
    out POST_PORT, al
    test rdx, rdx
    jz 2f
1:  popcnt rbx, rdx
    dec rdx
    jnz 1b
2:  mov al, MARK_LOOP_END
    out POST_PORT, al
    xor eax, eax
    jmp verdict

.include "lib64.inc"
