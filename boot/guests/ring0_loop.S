# Count down from the command-line number in ring 0, marking the loop's start and end on the
# POST port. Beside ring3_loop it shows whether this host's KVM runs ring-0 code natively
# (VT-x/AMD-V) or emulates it (PVM without hardware virtualization).
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    call cmdline_number
    mov rcx, rax
    mov al, MARK_LOOP_START
    out POST_PORT, al
    test rcx, rcx
    jz 2f
1:  dec rcx
    jnz 1b
2:  mov al, MARK_LOOP_END
    out POST_PORT, al
    xor eax, eax
    jmp verdict

.include "lib64.inc"
