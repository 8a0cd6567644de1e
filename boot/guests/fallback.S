# Ring-0 instructions that KVM without hardware virtualization may fail to emulate (seen on
# PVM: xsave/xrstor, int3, stac/clac, popcnt), each checked for its architectural effect.
# Verdict 0 when all behaved; otherwise the number of the failed check.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set CR4_OSXSAVE, 1 << 18
.set XCR0_X87_SSE, 3
.set RFLAGS_AC, 1 << 18
.set BP_VECTOR, 3
.text
.global _start
_start:
    # the int3 vector goes to bp_handler
    lea rax, [rip + bp_handler]
    lea rdi, [rip + idt]
    mov esi, BP_VECTOR
    call set_interrupt_gate
    lidt [rip + idt_pointer]

    mov al, 1                               # int3 reaches the handler and comes back
    int3
    cmp dword ptr [rip + breakpoints], 1
    jne fail

    mov al, 2                               # popcnt
    mov rcx, 0xf0f0f0f0f0f0f0f1
    popcnt rbx, rcx
    cmp rbx, 33
    jne fail

    mov al, 3                               # stac sets AC, clac clears it
    stac
    pushfq
    pop rbx
    test ebx, RFLAGS_AC
    jz fail
    clac
    pushfq
    pop rbx
    test ebx, RFLAGS_AC
    jnz fail

    mov al, 4                               # xsave, clobber xmm0, xrstor brings it back
    mov rax, cr4
    or rax, CR4_OSXSAVE
    mov cr4, rax
    xor ecx, ecx
    mov eax, XCR0_X87_SSE
    xor edx, edx
    xsetbv
    movdqu xmm0, [rip + pattern]
    lea rdi, [rip + xsave_area]
    mov eax, XCR0_X87_SSE
    xor edx, edx
    xsave [rdi]
    movdqu xmm0, [rip + zeros]
    xrstor [rdi]
    movdqu [rip + check], xmm0
    mov rbx, [rip + check]
    mov al, 4
    cmp rbx, [rip + pattern]
    jne fail

    lea rsi, [rip + passed]
    call serial_puts
    xor eax, eax
fail:
    jmp verdict

bp_handler:
    inc dword ptr [rip + breakpoints]
    iretq

passed:
    .asciz "fallback: int3 popcnt stac clac xsave xrstor all behaved\n"
.balign 16
pattern:
    .quad 0x0123456789abcdef, 0xfedcba9876543210
zeros:
    .quad 0, 0
check:
    .quad 0, 0
breakpoints:
    .long 0
.balign 64
xsave_area:
    .fill 4096, 1, 0
.balign 16
idt:
    .fill 256 * 16, 1, 0
idt_pointer:
    .word 256 * 16 - 1
    .quad idt

.include "lib64.inc"
