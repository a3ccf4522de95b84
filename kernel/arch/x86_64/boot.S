/*
 * Multiboot2 entry: GRUB leaves us in 32-bit protected mode with paging off, EAX = magic and
 * EBX = physical address of the boot information. We build just enough paging to enter long mode
 * (the first 1 GiB identity-mapped and again at KERNEL_VMA), jump to the higher half and call
 * kernel_main(). The kernel then builds its real page tables.
 */
#define KERNEL_VMA 0xffffffff80000000
#define MB2_MAGIC 0xE85250D6
#define MB2_ARCH_I386 0

    .section .multiboot2, "a"
    .align 8
mb2_header_start:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header_start
    .long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header_start))
    /* Framebuffer request (optional: GRUB may leave us in text mode). */
    .align 8
    .short 5
    .short 1
    .long 20
    .long 1024
    .long 768
    .long 32
    /* End tag. */
    .align 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

    .section .boot.bss, "aw", @nobits
    .align 4096
boot_pml4:      .skip 4096
boot_pdpt_low:  .skip 4096
boot_pdpt_high: .skip 4096
boot_pd:        .skip 4096
boot32_stack:   .skip 4096
boot32_stack_top:

    .section .boot.data, "aw"
    .align 16
boot_gdt:
    .quad 0
    .quad 0x00209A0000000000    /* 0x08: 64-bit code */
    .quad 0x0000920000000000    /* 0x10: data */
boot_gdt_end:
boot_gdt_ptr:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt

    .globl boot_multiboot_magic
    .globl boot_multiboot_info
    .globl boot_tsc_start
    .globl boot_nx_supported
    .align 8
boot_multiboot_magic: .quad 0
boot_multiboot_info:  .quad 0
boot_tsc_start:       .quad 0
boot_nx_supported:    .quad 0

no_long_mode_msg: .asciz "Home OS: this CPU does not support 64-bit long mode; halting.\r\n"

    .section .boot.text, "ax"
    .code32
    .globl _start
_start:
    cli
    cld
    movl %eax, boot_multiboot_magic
    movl %ebx, boot_multiboot_info
    movl $boot32_stack_top, %esp
    rdtsc
    movl %eax, boot_tsc_start
    movl %edx, boot_tsc_start + 4

    /* Long mode present? CPUID 0x80000001 EDX bit 29. */
    movl $0x80000000, %eax
    cpuid
    cmpl $0x80000001, %eax
    jb no_long_mode
    movl $0x80000001, %eax
    cpuid
    testl $(1 << 29), %edx
    jz no_long_mode
    xorl %esi, %esi
    testl $(1 << 20), %edx       /* NX */
    jz 1f
    movl $1, %esi
    movl %esi, boot_nx_supported
1:
    /* PML4[0] and PML4[511] -> PDPTs; PDPT_low[0] and PDPT_high[510] -> one PD of 2 MiB pages. */
    movl $boot_pdpt_low, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4
    movl $boot_pdpt_high, %eax
    orl $0x3, %eax
    movl %eax, boot_pml4 + 511 * 8
    movl $boot_pd, %eax
    orl $0x3, %eax
    movl %eax, boot_pdpt_low
    movl %eax, boot_pdpt_high + 510 * 8
    xorl %ecx, %ecx
2:  movl %ecx, %eax
    shll $21, %eax
    orl $0x83, %eax              /* present, writable, 2 MiB */
    movl %eax, boot_pd(, %ecx, 8)
    incl %ecx
    cmpl $512, %ecx
    jne 2b

    movl %cr4, %eax
    orl $(1 << 5), %eax          /* PAE */
    movl %eax, %cr4
    movl $boot_pml4, %eax
    movl %eax, %cr3
    movl $0xC0000080, %ecx       /* EFER */
    rdmsr
    orl $(1 << 8), %eax          /* LME */
    testl %esi, %esi
    jz 3f
    orl $(1 << 11), %eax         /* NXE */
3:  wrmsr
    movl %cr0, %eax
    orl $((1 << 31) | (1 << 16)), %eax   /* PG, WP */
    movl %eax, %cr0
    lgdt boot_gdt_ptr
    ljmp $0x08, $long_mode_entry

no_long_mode:
    /* Say why on COM1 before halting, so a serial log shows it. */
    movl $no_long_mode_msg, %esi
4:  movb (%esi), %al
    testb %al, %al
    jz 5f
    movw $0x3F8, %dx
    outb %al, %dx
    incl %esi
    jmp 4b
5:  hlt
    jmp 5b

    .code64
long_mode_entry:
    movw $0x10, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    xorw %ax, %ax
    movw %ax, %fs
    movw %ax, %gs
    movabsq $higher_half_entry, %rax
    jmp *%rax

    .section .text
higher_half_entry:
    movabsq $boot_stack_top, %rsp
    xorl %ebp, %ebp
    movl boot_multiboot_magic, %edi
    movl boot_multiboot_info, %esi
    call kernel_main
6:  cli
    hlt
    jmp 6b

    /*
     * The boot stack lives in .bss behind a guard page. The kernel leaves the guard unmapped when
     * it builds its page tables, so an overflow faults instead of corrupting memory.
     */
    .section .bss.page_aligned, "aw", @nobits
    .align 4096
    .globl boot_stack_guard
    .globl boot_stack_bottom
    .globl boot_stack_top
boot_stack_guard:
    .skip 4096
boot_stack_bottom:
    .skip 32768
boot_stack_top:
