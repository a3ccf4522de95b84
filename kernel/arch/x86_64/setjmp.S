/*
 * ksetjmp/klongjmp: the callee-saved registers, RSP and the return address. The exception
 * self-tests arm a KJmpBuf; the trap handler then rewrites the TrapFrame from it, so iretq
 * "returns" from ksetjmp a second time with 1 in RAX.
 */
    .section .text
    .globl ksetjmp
ksetjmp:
    movq %rbx, 0(%rdi)
    movq %rbp, 8(%rdi)
    movq %r12, 16(%rdi)
    movq %r13, 24(%rdi)
    movq %r14, 32(%rdi)
    movq %r15, 40(%rdi)
    leaq 8(%rsp), %rax
    movq %rax, 48(%rdi)      /* RSP after return */
    movq (%rsp), %rax
    movq %rax, 56(%rdi)      /* return address */
    xorl %eax, %eax
    ret

    .globl klongjmp
klongjmp:
    movq 0(%rdi), %rbx
    movq 8(%rdi), %rbp
    movq 16(%rdi), %r12
    movq 24(%rdi), %r13
    movq 32(%rdi), %r14
    movq 40(%rdi), %r15
    movq 48(%rdi), %rsp
    movl %esi, %eax
    jmp *56(%rdi)

/*
 * raise_synthetic_exception(vector, error_code, push_error_code): builds the interrupt frame the
 * CPU would push (kernel SS:RSP, RFLAGS with IF clear, CS:RIP) and enters the vector's stub. The
 * self-tests use it for the exceptions long mode gives no instruction to raise with an error code
 * (#TS, #AC at CPL 0, #CP without CET). Returns only if a handler resumes at the return address.
 */
    .globl raise_synthetic_exception
raise_synthetic_exception:
    movq %rsp, %rax
    pushq $0x10                  /* SS */
    pushq %rax                   /* RSP */
    pushfq
    andq $~0x200, (%rsp)         /* interrupt gates clear IF */
    pushq $0x08                  /* CS */
    leaq 1f(%rip), %rax
    pushq %rax                   /* RIP */
    testl %edx, %edx
    jz 2f
    pushq %rsi                   /* error code */
2:  movzbl %dil, %edi
    leaq trap_stub_table(%rip), %rax
    jmp *(%rax, %rdi, 8)
1:  ret
