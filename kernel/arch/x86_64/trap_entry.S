/*
 * Trap entry stubs for all 256 vectors. Each stub makes the stack look the same (a dummy error
 * code where the CPU pushes none, then the vector), saves the general registers into a TrapFrame
 * and calls trap_dispatch(TrapFrame*). Returning restores the (possibly edited) frame with iretq:
 * the exception self-tests edit RIP/RSP there to recover.
 */
    .section .text

.macro TRAP_STUB vector, has_error
    .align 16
trap_stub_\vector:
    .if \has_error == 0
    pushq $0
    .endif
    pushq $\vector
    jmp trap_common
.endm

.altmacro
.macro TRAP_STUB_AUTO vector
    .if (\vector == 8) || (\vector == 10) || (\vector == 11) || (\vector == 12) || (\vector == 13) || (\vector == 14) || (\vector == 17) || (\vector == 21) || (\vector == 29) || (\vector == 30)
        TRAP_STUB \vector, 1
    .else
        TRAP_STUB \vector, 0
    .endif
.endm

.set i, 0
.rept 256
    TRAP_STUB_AUTO %i
    .set i, i + 1
.endr

trap_common:
    /* Coming from user mode: switch to the kernel GS base. */
    testb $3, 24(%rsp)
    jz 1f
    swapgs
1:
    pushq %rax
    pushq %rbx
    pushq %rcx
    pushq %rdx
    pushq %rsi
    pushq %rdi
    pushq %rbp
    pushq %r8
    pushq %r9
    pushq %r10
    pushq %r11
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    cld
    movq %rsp, %rdi
    /* Link a frame record so backtraces walk from the handler into the interrupted code. */
    pushq 136(%rsp)          /* frame->rip */
    pushq %rbp
    movq %rsp, %rbp
    call trap_dispatch
    addq $16, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %r11
    popq %r10
    popq %r9
    popq %r8
    popq %rbp
    popq %rdi
    popq %rsi
    popq %rdx
    popq %rcx
    popq %rbx
    popq %rax
    addq $16, %rsp           /* vector and error code */
    testb $3, 8(%rsp)
    jz 2f
    swapgs
2:
    iretq

.macro TRAP_STUB_ADDR vector
    .quad trap_stub_\vector
.endm

    .section .rodata
    .align 8
    .globl trap_stub_table
trap_stub_table:
.set i, 0
.rept 256
    TRAP_STUB_ADDR %i
    .set i, i + 1
.endr
