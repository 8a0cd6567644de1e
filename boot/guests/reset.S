# Reset the machine the way Linux's `reboot` does on a PC: pulse reset through the i8042.
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.set I8042_STATUS_INPUT_FULL, 0x02
.set I8042_CMD_PULSE_RESET, 0xfe
.text
.global _start
_start:
    lea rsi, [rip + message]
    call serial_puts
1:  in al, I8042_COMMAND_PORT
    test al, I8042_STATUS_INPUT_FULL
    jnz 1b
    mov al, I8042_CMD_PULSE_RESET
    out I8042_COMMAND_PORT, al
    mov al, 1           # only reached if the reset did not happen
    jmp verdict

message:
    .asciz "resetting through the i8042\n"

.include "lib64.inc"
