/* Guest kit ring-0 side: the 64-bit entry of the boot contract, the GDT,
 * per-vCPU TSSes, the IDT, the exception handler, the interrupt handler and
 * the ring-3 sti/cli/hlt emulation (#GP; see irq.c).
 *
 * Every vCPU enters kit_entry64 at once (RDI = vCPU index, RSI = boot_params
 * or 0). Ring 0 is emulated on PVM hosts, so the path to ring 3 is ~40
 * instructions (half of them for CPUID): all tables below are built at
 * assembly time (see layout.h); each vCPU only picks its stacks, loads
 * GDT/IDT/TR, reads CPUID and irets to ring 3 with IOPL=3, where kit_start()
 * (C) runs natively with in/out still allowed. */
#include "layout.h"

#define FIXED(off)	(KIT_FIXED_BASE + (off))

	.section .kit.fixed, "awx", @progbits
	.code64

/* void kit_entry64(u64 cpu [rdi], u64 boot_params [rsi]) — never returns. */
	.globl kit_entry64
	.type kit_entry64, @function
kit_entry64:
	cmp $KIT_MAX_CPUS, %rdi
	jae kit_r0_too_many
	mov %rdi, %rax
	shl $KIT_STACK0_SHIFT, %rax
	lea kit_stack0 + (1 << KIT_STACK0_SHIFT)(%rip), %rsp
	add %rax, %rsp
	lgdt kit_gdt_desc(%rip)
	lidt kit_idt_desc(%rip)
	mov %edi, %eax
	shl $4, %eax
	add $KIT_SEL_TSS0, %eax
	ltr %ax
	/* CPUID must run here: on PVM a ring-3 cpuid executes natively and
	 * reports the host's CPU, not the vCPU vmm configured. Results ride
	 * to ring 3 in r8-r10 (see struct kit_boot_cpuid in kit_internal.h). */
	xor %eax, %eax
	cpuid
	mov %eax, %r8d			/* r8: max basic leaf */
	mov $1, %eax
	cpuid
	mov %ebx, %r9d			/* r9 low: leaf 1 EBX (APIC id) */
	mov $0xb, %eax
	mov $1, %ecx
	cpuid
	shl $32, %rbx
	or %rbx, %r9			/* r9 high: leaf 0xB.1 EBX (count) */
	mov $0x40000000, %eax
	cpuid
	mov %eax, %r10d			/* r10 low: max hypervisor leaf */
	mov $0x40000010, %eax
	cpuid
	shl $32, %rax
	or %rax, %r10			/* r10 high: leaf 0x40000010 EAX (kHz) */
	/* iretq frame: SS, RSP, RFLAGS, CS, RIP. rdi/rsi pass through. */
	push $(KIT_SEL_UDATA | 3)
	mov %rdi, %rax
	shl $KIT_STACK3_SHIFT, %rax
	lea kit_stack3 + (1 << KIT_STACK3_SHIFT)(%rip), %rcx
	add %rcx, %rax
	push %rax
	push $KIT_RFLAGS_USER
	push $(KIT_SEL_UCODE | 3)
	lea kit_ring3_start(%rip), %rax
	push %rax
	iretq
	.size kit_entry64, . - kit_entry64

/* Exception stubs at KIT_VEC_OFF + n * 16. Vectors without a CPU-pushed
 * error code push 0 so kit_r0_exception sees one frame layout. */
	.org KIT_VEC_OFF
	.set vec, 0
	.rept 32
	.org KIT_VEC_OFF + vec * 16
	.if ((1 << vec) & 0x60227d00) == 0
	pushq $0
	.endif
	pushq $vec
	.if vec == 13
	jmp kit_r0_gp
	.else
	jmp kit_r0_exception
	.endif
	.set vec, vec + 1
	.endr

/* Pseudo-descriptors; the first 6 bytes of kit_gdt_desc also serve lgdt in
 * 32-bit mode (boot32.S), as the base is below 4 GiB. */
	.org KIT_DESC_OFF
	.globl kit_gdt_desc
kit_gdt_desc:
	.word KIT_GDT_SIZE - 1
	.quad FIXED(KIT_GDT_OFF)
	.balign 8
kit_idt_desc:
	.word KIT_IDT_ENTRIES * 16 - 1
	.quad FIXED(KIT_IDT_OFF)
	.balign 8
kit_idt_null:				/* lidt this, then fault: triple fault */
	.word 0
	.quad 0

/* GDT. Accessed bits are preset so loading a selector never writes here;
 * ltr still sets the busy bit of each vCPU's own TSS descriptor. */
	.org KIT_GDT_OFF
	.quad 0				/* null */
	.quad 0x00af9b000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf93000000ffff	/* 0x10 kernel data */
	.quad 0x00cff3000000ffff	/* 0x18 user data (DPL 3) */
	.quad 0x00affb000000ffff	/* 0x20 user code, 64-bit (DPL 3) */
	.set cpu, 0
	.rept KIT_MAX_CPUS
	.set base, FIXED(KIT_TSS_OFF) + cpu * KIT_TSS_STRIDE
	.set limit, KIT_IOMAP_OFF - (KIT_TSS_OFF + cpu * KIT_TSS_STRIDE) + KIT_IOMAP_BYTES
	.word limit & 0xffff
	.word base & 0xffff
	.byte (base >> 16) & 0xff
	.byte 0x89			/* present, 64-bit TSS (available) */
	.byte (limit >> 16) & 0x0f
	.byte (base >> 24) & 0xff
	.long base >> 32
	.long 0
	.set cpu, cpu + 1
	.endr

/* TSSes: rsp0 = top of the vCPU's ring-0 stack (used for exceptions raised
 * in ring 3); iomap_base points at the shared zero bitmap. */
	.org KIT_TSS_OFF
	.set cpu, 0
	.rept KIT_MAX_CPUS
	.org KIT_TSS_OFF + cpu * KIT_TSS_STRIDE
	.long 0
	.quad kit_stack0 + ((cpu + 1) << KIT_STACK0_SHIFT)	/* rsp0 */
	.fill 90, 1, 0
	.word KIT_IOMAP_OFF - (KIT_TSS_OFF + cpu * KIT_TSS_STRIDE)
	.set cpu, cpu + 1
	.endr
	.org KIT_IOMAP_OFF
	.fill KIT_IOMAP_BYTES, 1, 0	/* every port allowed */
	.byte 0xff			/* terminator */

/* Interrupt stubs at KIT_IRQ_VEC_OFF + (n - 32) * 16 for vectors 32..255:
 * push the vector, join kit_r0_irq (see irq.c for the API around them). */
	.org KIT_IRQ_VEC_OFF
	.set vec, KIT_IRQ_FIRST
	.rept KIT_IDT_ENTRIES - KIT_IRQ_FIRST
	.org KIT_IRQ_VEC_OFF + (vec - KIT_IRQ_FIRST) * 16
	pushq $vec
	jmp kit_r0_irq
	.set vec, vec + 1
	.endr

/* IDT: interrupt gates (type 0xe, DPL 0) on the kernel code selector, so
 * IF is clear in every handler. No software-interrupt gate for ring 3: PVM
 * turns a ring-3 "int n" into #UD. */
	.org KIT_IDT_OFF
	.set vec, 0
	.rept KIT_IDT_ENTRIES
	.if vec < KIT_IRQ_FIRST
	.set handler, FIXED(KIT_VEC_OFF) + vec * 16
	.else
	.set handler, FIXED(KIT_IRQ_VEC_OFF) + (vec - KIT_IRQ_FIRST) * 16
	.endif
	.word handler & 0xffff
	.word KIT_SEL_KCODE
	.byte 0
	.byte 0x8e
	.word (handler >> 16) & 0xffff
	.long handler >> 32
	.long 0
	.set vec, vec + 1
	.endr

/* ------------------------------------------------------------------------ */
	.text

/* First ring-3 instructions: RSP is the 16-byte aligned top of this vCPU's
 * ring-3 stack, RDI/RSI still hold the vCPU index and boot_params, r8-r10
 * the CPUID results, stored on the stack for kit_start (4 pushes keep the
 * call 16-byte aligned). */
	.type kit_ring3_start, @function
kit_ring3_start:
	xor %ebp, %ebp
	push $0
	push %r10
	push %r9
	push %r8
	mov %rsp, %rdx			/* struct kit_boot_cpuid * */
	call kit_start
	ud2
	.size kit_ring3_start, . - kit_ring3_start

/* Interrupts (vectors 32..255), entered from a stub with the vector on the
 * stack above the CPU's frame (rip, cs, rflags, rsp, ss; from ring 3 on the
 * TSS rsp0 stack, from ring 0 on the same per-vCPU ring-0 stack). Counts
 * kit_irq_counts[cpu][vector] (cpu from which ring-0 stack we are on), sends
 * the local APIC EOI unless kit_irq_eoi_defer[vector] is set (level-triggered
 * sources that ring 3 acknowledges first; the spurious vector), and returns.
 * 16 instructions: ring 0 is emulated on PVM. */
	.type kit_r0_irq, @function
kit_r0_irq:
	push %rax
	push %rdx
	mov %rsp, %rax
	sub $kit_stack0, %rax
	shr $KIT_STACK0_SHIFT, %eax
	shl $8, %eax
	movzbl 16(%rsp), %edx		/* vector */
	add %edx, %eax
	incl kit_irq_counts(, %rax, 4)
	cmpb $0, kit_irq_eoi_defer(%rdx)
	jne 1f
	mov $KIT_LAPIC_EOI, %eax
	movl $0, (%rax)
1:	pop %rdx
	pop %rax
	add $8, %rsp
	iretq
	.size kit_r0_irq, . - kit_r0_irq

/* #GP: ring 3 may not run sti, cli or hlt on PVM even with IOPL=3 (each
 * raises #GP(0); on hardware they are allowed with IOPL=3 and never get
 * here, except hlt). Emulate those three for ring 3; anything else is the
 * usual panic. Stack: vector, error, rip, cs, rflags, rsp, ss.
 *   sti / cli: set / clear IF in the saved RFLAGS, skip the instruction.
 *   hlt: wait here with "sti; hlt; cli" whatever the saved IF (an
 *   interrupt ends the hlt and is taken in ring 0, on this stack), then
 *   resume after the hlt with the saved IF unchanged. So ring 3 waits
 *   without a lost wake-up as "cli; check; hlt" (Linux's safe_halt). */
	.type kit_r0_gp, @function
kit_r0_gp:
	testb $3, 24(%rsp)		/* CS: from ring 3 only */
	jz kit_r0_exception
	push %rax
	mov 24(%rsp), %rax		/* faulting rip */
	cmpb $0xfb, (%rax)
	je 1f
	cmpb $0xfa, (%rax)
	je 2f
	cmpb $0xf4, (%rax)
	je 3f
	pop %rax
	jmp kit_r0_exception
1:	orq $0x200, 40(%rsp)		/* sti */
	jmp 4f
2:	andq $~0x200, 40(%rsp)		/* cli */
	jmp 4f
3:	sti				/* hlt */
	hlt
	cli
4:	incq 24(%rsp)
	pop %rax
	add $16, %rsp
	iretq
	.size kit_r0_gp, . - kit_r0_gp

/* Ring-0 slow paths: they print, so they are not at fixed addresses. */

/* Entered from an exception stub: stack = vector, error, rip, cs, rflags,
 * rsp, ss. Prints "PANIC: exception <n> error 0x<e> rip 0x<x> cpu <c>" and
 * triple-faults. The vCPU index comes from which ring-0 stack we are on. */
	.type kit_r0_exception, @function
kit_r0_exception:
	mov %rsp, %rbx
	mov %rsp, %r15
	lea kit_stack0(%rip), %rax
	sub %rax, %r15
	shr $KIT_STACK0_SHIFT, %r15
	call kit_r0_lock
	lea kit_r0_msg_exc(%rip), %rsi
	call kit_r0_puts
	mov 0(%rbx), %rax
	call kit_r0_putdec
	lea kit_r0_msg_err(%rip), %rsi
	call kit_r0_puts
	mov 8(%rbx), %rax
	call kit_r0_puthex
	lea kit_r0_msg_rip(%rip), %rsi
	call kit_r0_puts
	mov 16(%rbx), %rax
	call kit_r0_puthex
	lea kit_r0_msg_cpu(%rip), %rsi
	call kit_r0_puts
	mov %r15, %rax
	call kit_r0_putdec
	mov $'\n', %eax
	call kit_r0_putc
	call kit_r0_unlock
	jmp kit_r0_triple_fault
	.size kit_r0_exception, . - kit_r0_exception

/* A vCPU index >= KIT_MAX_CPUS: no stack of its own, so borrow the single
 * overflow stack under a lock taken without one, say why and die. */
	.type kit_r0_too_many, @function
kit_r0_too_many:
1:	mov $1, %eax
	xchg %eax, kit_r0_overflow_lock(%rip)
	test %eax, %eax
	jz 2f
	pause
	jmp 1b
2:	lea kit_r0_overflow_stack + 512(%rip), %rsp
	mov %rdi, %r15
	call kit_r0_lock
	lea kit_r0_msg_many(%rip), %rsi
	call kit_r0_puts
	mov %r15, %rax
	call kit_r0_putdec
	lea kit_r0_msg_many2(%rip), %rsi
	call kit_r0_puts
	call kit_r0_unlock
	jmp kit_r0_triple_fault
	.size kit_r0_too_many, . - kit_r0_too_many

/* Triple fault: load an empty IDT and fault. The fault is raised in ring 3
 * (an iretq to a ud2): PVM's ring-0 emulator reports an emulation failure
 * for int3/int n instead of a triple fault, while a native ring-3 fault with
 * no IDT ends in KVM_EXIT_SHUTDOWN as on hardware. Needs a usable stack. */
	.globl kit_r0_triple_fault
	.type kit_r0_triple_fault, @function
kit_r0_triple_fault:
	lidt kit_idt_null(%rip)
	mov %rsp, %rax
	and $~0xf, %rax
	push $(KIT_SEL_UDATA | 3)
	push %rax
	push $KIT_RFLAGS_USER
	push $(KIT_SEL_UCODE | 3)
	lea kit_ring3_fault(%rip), %rax
	push %rax
	iretq
	.size kit_r0_triple_fault, . - kit_r0_triple_fault

/* Ring 3: with no usable IDT this faults into a triple fault. kit_die()
 * (cpu.c) comes here too after clearing the IDT gates from ring 3. */
	.globl kit_ring3_fault
	.type kit_ring3_fault, @function
kit_ring3_fault:
	ud2
	jmp kit_ring3_fault
	.size kit_ring3_fault, . - kit_ring3_fault

/* Take the C console lock (kit_console_lock) so the panic line is not
 * interleaved, but give up after ~64k tries: the faulting code may hold it. */
kit_r0_lock:
	mov $0x10000, %ecx
1:	mov $1, %eax
	xchg %eax, kit_console_lock(%rip)
	test %eax, %eax
	jz 2f
	pause
	dec %ecx
	jnz 1b
2:	ret

kit_r0_unlock:
	movl $0, kit_console_lock(%rip)
	ret

/* putc(al): wait (bounded) for LSR.THRE, then write THR. */
kit_r0_putc:
	mov %eax, %r8d
	mov $0x10000, %ecx
	mov $(KIT_COM1 + 5), %dx
1:	in %dx, %al
	test $0x20, %al
	jnz 2f
	dec %ecx
	jnz 1b
2:	mov $KIT_COM1, %dx
	mov %r8d, %eax
	out %al, %dx
	ret

/* puts(rsi): NUL-terminated string. */
kit_r0_puts:
1:	movzbl (%rsi), %eax
	test %eax, %eax
	jz 2f
	call kit_r0_putc
	inc %rsi
	jmp 1b
2:	ret

/* putdec(rax): unsigned decimal. */
kit_r0_putdec:
	sub $32, %rsp
	lea 31(%rsp), %rsi
	movb $0, (%rsi)
	mov $10, %r9
1:	xor %edx, %edx
	div %r9
	add $'0', %dl
	dec %rsi
	mov %dl, (%rsi)
	test %rax, %rax
	jnz 1b
	call kit_r0_puts
	add $32, %rsp
	ret

/* puthex(rax): "0x" and hex digits without leading zeros. */
kit_r0_puthex:
	sub $32, %rsp
	lea 31(%rsp), %rsi
	movb $0, (%rsi)
1:	mov %eax, %edx
	and $0xf, %edx
	lea kit_r0_hexdigits(%rip), %r9
	movzbl (%r9, %rdx), %edx
	dec %rsi
	mov %dl, (%rsi)
	shr $4, %rax
	jnz 1b
	dec %rsi
	movb $'x', (%rsi)
	dec %rsi
	movb $'0', (%rsi)
	call kit_r0_puts
	add $32, %rsp
	ret

	.data
	.globl kit_irq_eoi_defer	/* u8 [KIT_IDT_ENTRIES]: 1 = no EOI in kit_r0_irq */
kit_irq_eoi_defer:
	.fill KIT_IRQ_SPURIOUS, 1, 0
	.byte 1				/* the spurious vector never takes an EOI */
	.fill KIT_IDT_ENTRIES - KIT_IRQ_SPURIOUS - 1, 1, 0

	.section .rodata
kit_r0_hexdigits:	.ascii "0123456789abcdef"
kit_r0_msg_exc:		.asciz "PANIC: exception "
kit_r0_msg_err:		.asciz " error "
kit_r0_msg_rip:		.asciz " rip "
kit_r0_msg_cpu:		.asciz " cpu "
kit_r0_msg_many:	.asciz "PANIC: vCPU "
kit_r0_msg_many2:	.asciz " is over the guest kit's limit of 64 vCPUs; refusing to run\n"

	.bss
	.balign 16
	.globl kit_stack0
kit_stack0:	.skip KIT_MAX_CPUS << KIT_STACK0_SHIFT
	.balign 16
	.globl kit_stack3
kit_stack3:	.skip KIT_MAX_CPUS << KIT_STACK3_SHIFT
	.balign 16
kit_r0_overflow_stack:	.skip 512
	.balign 64
	.globl kit_irq_counts		/* u32 [KIT_MAX_CPUS][KIT_IDT_ENTRIES] */
kit_irq_counts:	.skip KIT_MAX_CPUS * KIT_IDT_ENTRIES * 4
	.balign 4
kit_r0_overflow_lock:	.skip 4

	.section .note.GNU-stack, "", @progbits
