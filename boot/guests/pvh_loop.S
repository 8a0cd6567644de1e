# The benchmark's ring-0 loops behind a PVH entry, so QEMU (`-kernel pvh_loop.elf`) and kvmpy
# can run the very same code: 32-bit protected-mode entry, its own page tables and GDT,
# switch to long mode, run the patched KIND of loop (0: the countdown, 1: the x87 block,
# 2: the AVX2 block of native/compute_blocks.inc) ITERATIONS times between two POST-port
# marks (QEMU ignores them), report through the debug-exit port.
.include "guest.inc"
.include "compute_blocks.inc"
.intel_syntax noprefix
.set XEN_ELFNOTE_PHYS32_ENTRY, 18
.set CR4_PAE, 1 << 5
.set EFER_MSR, 0xc0000080
.set EFER_LME, 1 << 8
.set CR0_PG_PE, 0x80000001
.set PTE_PRESENT_WRITABLE, 0x3
.set PDE_LARGE, 0x83
.set CR4_OSFXSR_OSXMMEXCPT, 3 << 9
.set CR4_OSXSAVE, 1 << 18
.set XCR0_X87_SSE_AVX, 7
.set KIND_X87, 1
.set KIND_AVX2, 2

.pushsection .note.kvmpy, "a"          # PVH entry note (owner "Xen"); kvmpy honours it too
    .balign 4
    .long 4
    .long 4
    .long XEN_ELFNOTE_PHYS32_ENTRY
    .asciz "Xen"
    .balign 4
    .long pvh_start
.popsection

.text
.code32
.global _start
_start:
pvh_start:
    lea eax, [pdpt + PTE_PRESENT_WRITABLE]
    mov [pml4], eax
    lea eax, [pd + PTE_PRESENT_WRITABLE]
    mov [pdpt], eax
    xor ecx, ecx
1:  mov eax, ecx
    shl eax, 21
    or eax, PDE_LARGE
    mov [pd + ecx * 8], eax
    inc ecx
    cmp ecx, 512
    jb 1b
    mov eax, cr4
    or eax, CR4_PAE
    mov cr4, eax
    lea eax, [pml4]
    mov cr3, eax
    mov ecx, EFER_MSR
    rdmsr
    or eax, EFER_LME
    wrmsr
    lgdt [gdt_pointer]
    mov eax, CR0_PG_PE
    mov cr0, eax
    ljmp 0x08, offset long_mode

.code64
long_mode:
    mov rax, cr4
    or rax, CR4_OSFXSR_OSXMMEXCPT
    mov cr4, rax
    mov rcx, [rip + iterations]
    mov rdx, [rip + kind]
    mov al, MARK_LOOP_START
    out POST_PORT, al
    test rcx, rcx
    jz 2f
    cmp rdx, KIND_X87
    je x87_loop
    cmp rdx, KIND_AVX2
    je avx2_loop
3:  dec rcx
    jnz 3b
2:  mov al, MARK_LOOP_END
    out POST_PORT, al
    xor eax, eax
    out DEBUG_EXIT_PORT, al
4:  cli
    hlt
    jmp 4b

x87_loop:
    X87_SETUP
5:  X87_BLOCK
    dec rcx
    jnz 5b
    X87_CLEANUP
    jmp 2b

avx2_loop:                              # the OS's part first: CR4.OSXSAVE and XCR0
    mov rax, cr4
    or rax, CR4_OSXSAVE
    mov cr4, rax
    mov r8, rcx
    xor ecx, ecx
    xor edx, edx
    mov eax, XCR0_X87_SSE_AVX
    xsetbv
    mov rcx, r8
    AVX2_SETUP
6:  AVX2_BLOCK
    dec rcx
    jnz 6b
    AVX2_CLEANUP
    jmp 2b

.balign 8
    .ascii "KVMPYITR"                   # the benchmark patches the quadword after this tag
iterations:
    .quad 1000
    .ascii "KVMPYKND"                   # ... and the one after this
kind:
    .quad 0
gdt:
    .quad 0
    .quad 0x00af9b000000ffff            # 0x08: 64-bit code
gdt_pointer:
    .word gdt_pointer - gdt - 1
    .long gdt
.balign 4096
pml4:
    .fill 4096, 1, 0
pdpt:
    .fill 4096, 1, 0
pd:
    .fill 4096, 1, 0
