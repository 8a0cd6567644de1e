# Report the number given on the command line as the verdict (`kvmpy run exit_code.elf --cmdline 42`).
.include "guest.inc"
START_MODE MODE_LONG
.intel_syntax noprefix
.code64
.text
.global _start
_start:
    call cmdline_number
    jmp verdict

.include "lib64.inc"
