# `syscall` from ring 3: the verdict is the CPL the kernel-side handler runs at (0 on correct
# hardware). Some KVMs without hardware virtualization (PVM) land at the handler in ring 3.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set MSR_STAR, 0xc0000081
.set MSR_LSTAR, 0xc0000082
.set MSR_SFMASK, 0xc0000084
.set RFLAGS_IF, 0x200
.text
.global _start
_start:
    mov ecx, MSR_STAR
    xor eax, eax
    mov edx, (GDT_KERNEL_DATA - 8) << 16 | GDT_KERNEL_CODE64   # sysret base unused here
    wrmsr
    mov ecx, MSR_LSTAR
    lea rax, [rip + handler]
    mov rdx, rax
    shr rdx, 32
    wrmsr
    mov ecx, MSR_SFMASK
    mov eax, RFLAGS_IF
    xor edx, edx
    wrmsr
    lea rdi, [rip + user]
    lea rsi, [rip + user_stack_top]
    jmp enter_ring3

user:
    syscall
    mov al, 0xff                # syscall returned without reaching the handler
    jmp verdict

handler:
    mov ax, cs
    and eax, 3
    jmp verdict

.include "lib64.inc"
.balign 16
user_stack:
    .fill 4096, 1, 0
user_stack_top:
