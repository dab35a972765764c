/* The vCPU thread: KVM_RUN in a loop, one switch over the exit reason. */
#include "vmm/vcpu.h"
#include "vmm/cpuid.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#define VCPU_KICK_SIGNAL SIGUSR1

static void vcpu_kick_handler(int sig)
{
	(void)sig;  /* Only here to interrupt KVM_RUN with EINTR. */
}

void vcpu_install_kick_signal(void)
{
	struct sigaction sa = { .sa_handler = vcpu_kick_handler };

	sigemptyset(&sa.sa_mask);
	sigaction(VCPU_KICK_SIGNAL, &sa, NULL);
}

int vcpu_create(struct vm *vm, unsigned int index, struct vcpu *vcpu)
{
	struct kvm_cpuid2 *cpuid = NULL;
	void *run;
	int err;

	memset(vcpu, 0, sizeof(*vcpu));
	vcpu->vm = vm;
	vcpu->index = index;
	vcpu->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (vcpu->fd < 0) {
		err = -errno;
		log_err("cannot create vCPU %u: %s", index, strerror(-err));
		return err;
	}
	run = mmap(NULL, vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu->fd, 0);
	if (run == MAP_FAILED) {
		err = -errno;
		log_err("vCPU %u: mapping kvm_run: %s", index, strerror(-err));
		goto fail;
	}
	vcpu->run = run;
	if (index == 0) {
		int khz = ioctl(vcpu->fd, KVM_GET_TSC_KHZ);

		vm->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	}
	err = cpuid_for_vcpu(vm->cpuid, index, vm->ncpus, vm->tsc_khz, &cpuid);
	if (err)
		goto fail;
	if (ioctl(vcpu->fd, KVM_SET_CPUID2, cpuid) < 0) {
		err = -errno;
		log_err("vCPU %u: KVM_SET_CPUID2: %s", index, strerror(-err));
		goto fail;
	}
	free(cpuid);
	return 0;
fail:
	free(cpuid);
	vcpu_destroy(vcpu);
	return err;
}

static void vcpu_set_segment(struct kvm_segment *s, uint16_t sel, bool code)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = sel,
		.type = code ? 0xb : 0x3, .present = 1, .dpl = 0, .s = 1,
		.l = code ? 1 : 0, .db = code ? 0 : 1, .g = 1,
	};
}

int vcpu_set_boot_state(struct vcpu *vcpu, uint64_t entry, uint64_t zero_page,
			bool runnable)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {
		.rip = entry, .rsi = zero_page, .rdi = vcpu->index, .rflags = 0x2,
	};
	struct kvm_mp_state mp = { .mp_state = KVM_MP_STATE_RUNNABLE };

	if (ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	vcpu_set_segment(&sregs.cs, LAYOUT_BOOT_CS, true);
	vcpu_set_segment(&sregs.ds, LAYOUT_BOOT_DS, false);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = LAYOUT_GDT;
	sregs.gdt.limit = 4 * 8 - 1;
	sregs.idt.base = 0;
	sregs.idt.limit = 0;
	/* PE, MP, ET, NE, WP, PG; PAE, OSFXSR, OSXMMEXCPT; LME, LMA. */
	sregs.cr0 = 0x1 | 0x2 | 0x10 | 0x20 | 0x10000 | 0x80000000ULL;
	sregs.cr4 = 0x20 | 0x200 | 0x400;
	sregs.cr3 = LAYOUT_PML4;
	sregs.efer = 0x100 | 0x400;
	if (ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;
	/* With an in-kernel LAPIC, secondary vCPUs wait for INIT/SIPI unless
	 * made runnable; the ELF contract starts them all at once. */
	if (runnable && vcpu->index > 0 && vcpu->vm->irqchip &&
	    ioctl(vcpu->fd, KVM_SET_MP_STATE, &mp) < 0)
		return -errno;
	return 0;
}

static uint64_t vcpu_rip(struct vcpu *vcpu)
{
	struct kvm_regs regs;

	return ioctl(vcpu->fd, KVM_GET_REGS, &regs) == 0 ? regs.rip : 0;
}

static void vcpu_report_emulation_failure(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	char bytes[64] = "";
	size_t off = 0;

	if (run->emulation_failure.suberror == KVM_INTERNAL_ERROR_EMULATION &&
	    run->emulation_failure.ndata >= 3 &&
	    (run->emulation_failure.flags & KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES)) {
		unsigned int n = run->emulation_failure.insn_size;

		if (n > sizeof(run->emulation_failure.insn_bytes))
			n = sizeof(run->emulation_failure.insn_bytes);
		off += (size_t)snprintf(bytes, sizeof(bytes), " (instruction bytes:");
		for (unsigned int i = 0; i < n && off + 4 < sizeof(bytes); i++)
			off += (size_t)snprintf(bytes + off, sizeof(bytes) - off, " %02x",
						run->emulation_failure.insn_bytes[i]);
		snprintf(bytes + off, sizeof(bytes) - off, ")");
	}
	if (run->internal.suberror == KVM_INTERNAL_ERROR_EMULATION)
		vm_request_exit(vcpu->vm, VM_EXIT_GUEST_CRASH,
				"guest vCPU %u: KVM could not emulate the instruction at RIP 0x%llx%s",
				vcpu->index, (unsigned long long)vcpu_rip(vcpu), bytes);
	else
		vm_request_exit(vcpu->vm, VM_EXIT_GUEST_CRASH,
				"guest vCPU %u: KVM internal error, suberror %u, at RIP 0x%llx",
				vcpu->index, run->internal.suberror,
				(unsigned long long)vcpu_rip(vcpu));
}

static void vcpu_handle_io(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	bool is_write = run->io.direction == KVM_EXIT_IO_OUT;

	/* KVM guarantees data_offset + count * size lies inside the run page. */
	for (uint32_t i = 0; i < run->io.count; i++, data += run->io.size)
		bus_access(&vcpu->vm->pio, run->io.port, data, run->io.size, is_write);
}

/* Returns false when the thread must end. */
static bool vcpu_handle_exit(struct vcpu *vcpu)
{
	struct kvm_run *run = vcpu->run;
	struct vm *vm = vcpu->vm;

	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		vcpu_handle_io(vcpu);
		return true;
	case KVM_EXIT_MMIO:
		bus_access(&vm->mmio, run->mmio.phys_addr, run->mmio.data,
			   run->mmio.len > 8 ? 8 : run->mmio.len, run->mmio.is_write);
		return true;
	case KVM_EXIT_INTR:
		return true;
	case KVM_EXIT_HLT:
		/* Only without an in-kernel LAPIC: nothing can wake the vCPU. */
		vm_request_exit(vm, VM_EXIT_GUEST_CRASH,
				"guest vCPU %u halted at RIP 0x%llx with no way to wake it",
				vcpu->index, (unsigned long long)vcpu_rip(vcpu));
		return false;
	case KVM_EXIT_SHUTDOWN:
		vm_request_exit(vm, VM_EXIT_GUEST_CRASH,
				"guest triple-faulted on vCPU %u (RIP 0x%llx): it had no usable exception handler",
				vcpu->index, (unsigned long long)vcpu_rip(vcpu));
		return false;
	case KVM_EXIT_SYSTEM_EVENT:
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN:
			vm_request_exit(vm, VM_EXIT_OK, "guest powered off");
			return false;
		case KVM_SYSTEM_EVENT_RESET:
			vm_request_exit(vm, VM_EXIT_OK, "guest reset");
			return false;
		default:
			vm_request_exit(vm, VM_EXIT_GUEST_CRASH,
					"guest vCPU %u: system event %u (crash)", vcpu->index,
					run->system_event.type);
			return false;
		}
	case KVM_EXIT_FAIL_ENTRY:
		vm_request_exit(vm, VM_EXIT_GUEST_CRASH,
				"guest vCPU %u: KVM could not enter the guest (hardware reason 0x%llx)",
				vcpu->index,
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		vcpu_report_emulation_failure(vcpu);
		return false;
	default:
		vm_request_exit(vm, VM_EXIT_GUEST_CRASH,
				"guest vCPU %u: unexpected KVM exit reason %u at RIP 0x%llx",
				vcpu->index, run->exit_reason,
				(unsigned long long)vcpu_rip(vcpu));
		return false;
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *vcpu = arg;
	struct vm *vm = vcpu->vm;
	char name[16];

	snprintf(name, sizeof(name), "vcpu%u", vcpu->index);
	pthread_setname_np(pthread_self(), name);
	log_debug("vCPU %u: first KVM_RUN", vcpu->index);
	for (;;) {
		if (vm_vcpu_should_park(vm)) {
			vm_vcpu_park(vm);
			if (__atomic_load_n(&vm->stop_req, __ATOMIC_ACQUIRE))
				break;
		}
		if (ioctl(vcpu->fd, KVM_RUN, 0) < 0) {
			int err = errno;

			if (err == EINTR || err == EAGAIN) {
				__atomic_store_n(&vcpu->run->immediate_exit, 0, __ATOMIC_RELEASE);
				continue;
			}
			vm_request_exit(vm, VM_EXIT_ERROR, "vCPU %u: KVM_RUN: %s",
					vcpu->index, strerror(err));
			break;
		}
		if (!vcpu_handle_exit(vcpu))
			break;
	}
	vm_vcpu_exited(vm);
	return NULL;
}

int vcpu_start(struct vcpu *vcpu)
{
	int err = pthread_create(&vcpu->thread, NULL, vcpu_thread, vcpu);

	if (err)
		return -err;
	vcpu->thread_started = true;
	return 0;
}

/* Racing with the thread entering KVM_RUN is fine: immediate_exit makes the
 * next KVM_RUN return at once, and the signal interrupts a running one. The
 * caller sets its request flag before kicking, and the thread checks flags
 * after every return from KVM_RUN. */
void vcpu_kick(struct vcpu *vcpu)
{
	if (!vcpu->run)
		return;
	__atomic_store_n(&vcpu->run->immediate_exit, 1, __ATOMIC_RELEASE);
	if (vcpu->thread_started)
		pthread_kill(vcpu->thread, VCPU_KICK_SIGNAL);
}

void vcpu_destroy(struct vcpu *vcpu)
{
	if (vcpu->run)
		munmap(vcpu->run, vcpu->vm->run_size);
	if (vcpu->fd >= 0)
		close(vcpu->fd);
	vcpu->run = NULL;
	vcpu->fd = -1;
}
