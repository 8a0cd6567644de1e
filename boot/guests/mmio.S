# MMIO reads and writes of every size against kvmpy's MMIO test device (scratch memory).
# Verdict 0 when all read back right; otherwise the number of the failed check.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set TESTDEV_ID, 0x00
.set TESTDEV_SCRATCH, 0x08
.set TESTDEV_ID_VALUE, 0x504d564b   # "KVMP"
.text
.global _start
_start:
    mov rbx, TEST_DEVICE_MMIO_BASE
    mov al, 1
    cmp dword ptr [rbx + TESTDEV_ID], TESTDEV_ID_VALUE
    jne fail
    mov al, 2                                   # 64-bit write, 64-bit read
    mov rcx, 0x0123456789abcdef
    mov [rbx + TESTDEV_SCRATCH], rcx
    cmp [rbx + TESTDEV_SCRATCH], rcx
    jne fail
    mov al, 3                                   # 8-bit writes, 64-bit read
    mov byte ptr [rbx + TESTDEV_SCRATCH + 8], 0x11
    mov byte ptr [rbx + TESTDEV_SCRATCH + 15], 0x88
    mov word ptr [rbx + TESTDEV_SCRATCH + 9], 0x3322   # 16-bit
    mov dword ptr [rbx + TESTDEV_SCRATCH + 11], 0x77665544   # 32-bit
    mov rcx, 0x8877665544332211
    cmp [rbx + TESTDEV_SCRATCH + 8], rcx
    jne fail
    mov al, 4                                   # 16-bit read from the middle
    cmp word ptr [rbx + TESTDEV_SCRATCH + 12], 0x6655
    jne fail
    lea rsi, [rip + passed]
    call serial_puts
    xor eax, eax
fail:
    jmp verdict

passed:
    .asciz "mmio: all sizes read back\n"

.include "lib64.inc"
