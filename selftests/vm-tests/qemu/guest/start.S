/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Entry of the nested VM's program: a multiboot (v1) image that QEMU's
 * -kernel loads at 1 MiB and enters in 32-bit protected mode, paging off,
 * interrupts off. Sets up a stack and calls guest_main(); halts if it
 * returns.
 */
#define MB_MAGIC	0x1badb002
#define MB_FLAGS	0x00000003	/* page-aligned modules, memory info */

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text
	.globl _start
_start:
	cli
	movl $stack_top, %esp
	xorl %ebp, %ebp
	call guest_main
1:	hlt
	jmp 1b

	.section .bss
	.align 16
	.skip 16384
stack_top:
	.section .note.GNU-stack, "", @progbits
