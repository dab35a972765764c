/* One vCPU: its KVM fd, its kvm_run page, its thread and its exit loop. */
#ifndef VMM_VCPU_H
#define VMM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct vm;
struct kvm_run;

struct vcpu {
	struct vm *vm;
	unsigned int index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool thread_started;
};

int vcpu_create(struct vm *vm, unsigned int index, struct vcpu *vcpu);
/* Registers and segments of the boot contract: long mode at entry. */
int vcpu_set_boot_state(struct vcpu *vcpu, uint64_t entry, uint64_t zero_page,
			bool runnable);
int vcpu_start(struct vcpu *vcpu);
/* Make KVM_RUN return to the thread's loop as soon as possible. */
void vcpu_kick(struct vcpu *vcpu);
void vcpu_destroy(struct vcpu *vcpu);
/* Install the (empty) kick signal handler; once per process. */
void vcpu_install_kick_signal(void);

#endif
