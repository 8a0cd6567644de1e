# Every vCPU starts here in long mode: each says hello under a spinlock and checks in; the
# vCPU with APIC ID 0 waits until the command-line number of vCPUs have checked in.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set STACK_SIZE, 4096
.set MAX_VCPUS, 16
.text
.global _start
_start:
    mov eax, 1
    cpuid
    shr ebx, 24                      # initial APIC ID = vCPU index
    mov eax, ebx
    inc eax
    shl eax, 12
    lea rsp, [rip + stacks]
    add rsp, rax                     # a private stack per vCPU
    mov r12d, ebx
1:  mov eax, 1                       # take the print lock
    xchg eax, dword ptr [rip + print_lock]
    test eax, eax
    jnz 1b
    lea rsi, [rip + hello]
    call serial_puts
    mov al, r12b
    add al, '0'
    mov byte ptr [rip + digit], al
    lea rsi, [rip + digit]
    call serial_puts
    mov dword ptr [rip + print_lock], 0
    lock inc dword ptr [rip + checked_in]
    test r12d, r12d
    jnz park
    call cmdline_number
2:  pause
    cmp dword ptr [rip + checked_in], eax
    jb 2b
    xor eax, eax
    jmp verdict
park:
    cli
    hlt
    jmp park

hello:
    .asciz "hello from vCPU "
digit:
    .byte 0, '\n', 0
.balign 4
print_lock:
    .long 0
checked_in:
    .long 0

.include "lib64.inc"
.balign 16
stacks:
    .fill STACK_SIZE * MAX_VCPUS, 1, 0
