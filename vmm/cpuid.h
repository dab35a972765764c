/* CPUID for each vCPU: what KVM supports, adjusted per vCPU (APIC id,
 * topology, hypervisor bit, TSC frequency leaf). */
#ifndef VMM_CPUID_H
#define VMM_CPUID_H

#include <stdint.h>

struct kvm_cpuid2;

/* KVM_GET_SUPPORTED_CPUID; *out is malloc'ed. */
int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out);
/* A copy of supported adjusted for vCPU index of ncpus; *out is malloc'ed. */
int cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned int index,
		   unsigned int ncpus, uint32_t tsc_khz, struct kvm_cpuid2 **out);

#define CPUID_TSC_LEAF 0x40000010u  /* EAX = TSC kHz, EBX = APIC bus kHz */

#endif
