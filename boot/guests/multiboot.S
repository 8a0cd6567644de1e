# A multiboot (v1) kernel, as hobby and VMM conformance kernels are: it checks the boot loader's
# magic, prints its command line and module 0 from the multiboot information, checks the memory
# map and QEMU's fw_cfg (signature, CPU count), and, with two vCPUs, that the second one did not
# start at the entry but starts when sent INIT and STARTUP IPIs. Verdict 0 when all holds; 2 if
# the second CPU had started at the entry, 3 if it did not start on SIPI, 1 for the rest.
.include "guest.inc"
.intel_syntax noprefix
.set MB_HEADER_MAGIC, 0x1BADB002
.set MB_FLAGS, 0x3                      # page-aligned modules, memory information
.set MB_BOOTLOADER_MAGIC, 0x2BADB002
.set INFO_FLAGS, 0
.set INFO_CMDLINE_FIELD, 16
.set INFO_MODS_COUNT, 20
.set INFO_MODS_ADDR, 24
.set INFO_MMAP_LENGTH, 44
.set INFO_HAS_CMDLINE, 1 << 2
.set INFO_HAS_MODULES, 1 << 3
.set INFO_HAS_MEMORY_MAP, 1 << 6
.set FW_CFG_SELECTOR, FW_CFG_PORT
.set FW_CFG_DATA, FW_CFG_PORT + 1
.set FW_CFG_SIGNATURE, 0
.set FW_CFG_NB_CPUS, 5
.set LAPIC_ICR_LOW, LAPIC_ADDR + 0x300
.set LAPIC_ICR_HIGH, LAPIC_ADDR + 0x310
.set ICR_INIT, 0x4500                   # INIT, level assert
.set ICR_STARTUP, 0x4600                # STARTUP; the vector is the start page number
.set ICR_DELIVERY_PENDING, 1 << 12
.set LAPIC_SVR, LAPIC_ADDR + 0xF0
.set SVR_APIC_ENABLED, 1 << 8
.set SPURIOUS_VECTOR, 0xFF
.set AP_APIC_ID, 1
.set TRAMPOLINE, 0x6000                 # where the second CPU starts in real mode (vector 6)
.set AP_STARTED, TRAMPOLINE + 0x100     # the second CPU increments this
.set AP_WAIT_LOOPS, 100000000

.text
.code32
multiboot_header:                       # first in .text: within the image's first 8 KiB
    .long MB_HEADER_MAGIC, MB_FLAGS, -(MB_HEADER_MAGIC + MB_FLAGS)

.global _start
_start:
    lea esp, stack_top
    lock inc dword ptr entries          # a second CPU started here would make this 2
    cmp eax, MB_BOOTLOADER_MAGIC
    jne fail
    mov ebp, ebx

    test dword ptr [ebp + INFO_FLAGS], INFO_HAS_CMDLINE
    jz fail
    lea esi, cmdline_label
    call puts
    mov esi, [ebp + INFO_CMDLINE_FIELD]
    call puts
    call newline

    test dword ptr [ebp + INFO_FLAGS], INFO_HAS_MODULES
    jz fail
    cmp dword ptr [ebp + INFO_MODS_COUNT], 1
    jne fail
    lea esi, module_label
    call puts
    mov ebx, [ebp + INFO_MODS_ADDR]
    mov esi, [ebx]                      # mod_start
    mov ecx, [ebx + 4]                  # mod_end
    sub ecx, esi
    call put_bytes

    test dword ptr [ebp + INFO_FLAGS], INFO_HAS_MEMORY_MAP
    jz fail
    cmp dword ptr [ebp + INFO_MMAP_LENGTH], 0
    je fail

    mov dx, FW_CFG_SELECTOR
    mov ax, FW_CFG_SIGNATURE
    out dx, ax
    mov dx, FW_CFG_DATA
    in eax, dx                          # four bytes of the signature
    cmp eax, 0x554D4551                 # "QEMU"
    jne fail
    mov dx, FW_CFG_SELECTOR
    mov ax, FW_CFG_NB_CPUS
    out dx, ax
    mov dx, FW_CFG_DATA
    in al, dx
    cmp al, 2
    jb pass                             # one CPU: nobody to start

    mov al, 2
    cmp dword ptr entries, 1
    jne verdict
    lea esi, ap_trampoline
    mov edi, TRAMPOLINE
    mov ecx, ap_trampoline_end - ap_trampoline
    cld
    rep movsb
    mov dword ptr [AP_STARTED], 0
    mov dword ptr [LAPIC_SVR], SVR_APIC_ENABLED | SPURIOUS_VECTOR  # a disabled APIC sends no IPI (KVM's)
    mov eax, ICR_INIT                   # the MP specification's sequence: INIT, then two STARTUPs
    call send_ipi
    mov eax, ICR_STARTUP | (TRAMPOLINE >> 12)
    call send_ipi
    mov eax, ICR_STARTUP | (TRAMPOLINE >> 12)
    call send_ipi
    mov ecx, AP_WAIT_LOOPS
1:  cmp dword ptr [AP_STARTED], 1
    je 2f
    pause
    loop 1b
    mov al, 3
    jmp verdict
2:  lea esi, ap_label
    call puts
pass:
    xor al, al
    jmp verdict
fail:
    mov al, 1
verdict:
    out DEBUG_EXIT_PORT, al
3:  cli
    hlt
    jmp 3b

# send_ipi: send the ICR low word in eax to the second CPU, once the previous IPI was delivered
send_ipi:
1:  test dword ptr [LAPIC_ICR_LOW], ICR_DELIVERY_PENDING
    jnz 1b
    mov dword ptr [LAPIC_ICR_HIGH], AP_APIC_ID << 24
    mov dword ptr [LAPIC_ICR_LOW], eax
    ret

# puts: print the NUL-terminated string at esi
puts:
    mov dx, COM1_THR
1:  lodsb
    test al, al
    jz 2f
    out dx, al
    jmp 1b
2:  ret

# put_bytes: print ecx bytes from esi
put_bytes:
    mov dx, COM1_THR
    jecxz 2f
1:  lodsb
    out dx, al
    loop 1b
2:  ret

newline:
    mov dx, COM1_THR
    mov al, '\n'
    out dx, al
    ret

# The second CPU's code, copied to TRAMPOLINE: real mode, CS = TRAMPOLINE >> 4, IP = 0.
.code16
ap_trampoline:
    cli
    xor ax, ax
    mov ds, ax
    lock inc dword ptr [AP_STARTED]
1:  hlt
    jmp 1b
ap_trampoline_end:
.code32

cmdline_label:
    .asciz "cmdline: "
module_label:
    .asciz "module: "
ap_label:
    .asciz "second CPU started on SIPI\n"

.balign 4
entries:
    .long 0
.balign 16
    .skip 1024
stack_top:
