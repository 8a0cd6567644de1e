# HLT until the in-kernel PIT has interrupted us TICKS times through the PIC and our IDT.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set PIC1_COMMAND, 0x20
.set PIC1_DATA, 0x21
.set PIC2_COMMAND, 0xa0
.set PIC2_DATA, 0xa1
.set PIC_EOI, 0x20
.set TIMER_VECTOR, 0x20
.set PIT_CHANNEL0, PIT_PORT
.set PIT_MODE, PIT_PORT + 3
.set PIT_RATE_GENERATOR, 0x34       # channel 0, lobyte/hibyte, mode 2
.set PIT_DIVISOR_100HZ, 11932
.set TICKS, 5
.text
.global _start
_start:
    # IDT gate for the timer vector: a 64-bit interrupt gate to timer_handler.
    lea rax, [rip + timer_handler]
    lea rdi, [rip + idt]
    mov esi, TIMER_VECTOR
    call set_interrupt_gate
    lidt [rip + idt_pointer]
    # PIC: remap IRQ 0-7 to vectors 0x20-0x27, unmask only the timer.
    mov al, 0x11
    out PIC1_COMMAND, al
    out PIC2_COMMAND, al
    mov al, TIMER_VECTOR
    out PIC1_DATA, al
    mov al, TIMER_VECTOR + 8
    out PIC2_DATA, al
    mov al, 4
    out PIC1_DATA, al
    mov al, 2
    out PIC2_DATA, al
    mov al, 1
    out PIC1_DATA, al
    out PIC2_DATA, al
    mov al, 0xfe
    out PIC1_DATA, al
    mov al, 0xff
    out PIC2_DATA, al
    # PIT channel 0 at 100 Hz.
    mov al, PIT_RATE_GENERATOR
    out PIT_MODE, al
    mov ax, PIT_DIVISOR_100HZ
    out PIT_CHANNEL0, al
    mov al, ah
    out PIT_CHANNEL0, al
    sti
1:  hlt
    cmp dword ptr [rip + ticks], TICKS
    jb 1b
    cli
    lea rsi, [rip + done]
    call serial_puts
    xor eax, eax
    jmp verdict

timer_handler:
    push rax
    inc dword ptr [rip + ticks]
    mov al, PIC_EOI
    out PIC1_COMMAND, al
    pop rax
    iretq

done:
    .asciz "timer: 5 interrupts from the PIT woke HLT\n"
.balign 16
idt:
    .fill 256 * 16, 1, 0
idt_pointer:
    .word 256 * 16 - 1
    .quad idt
ticks:
    .long 0

.include "lib64.inc"
