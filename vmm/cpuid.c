#include "vmm/cpuid.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define CPUID_MAX_ENTRIES 1024
#define CPUID_EXTRA 8   /* room for the leaves we add */

int cpuid_get_supported(int kvm_fd, struct kvm_cpuid2 **out)
{
	for (unsigned int n = 256; n <= CPUID_MAX_ENTRIES; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));

		if (!c)
			return -ENOMEM;
		c->nent = n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			*out = c;
			return 0;
		}
		free(c);
		if (errno != E2BIG)
			return -errno;
	}
	return -E2BIG;
}

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static unsigned int cpuid_order(unsigned int n)
{
	unsigned int bits = 0;

	while ((1u << bits) < n)
		bits++;
	return bits;
}

static void cpuid_add(struct kvm_cpuid2 *c, struct kvm_cpuid_entry2 e)
{
	c->entries[c->nent++] = e;
}

int cpuid_for_vcpu(const struct kvm_cpuid2 *supported, unsigned int index,
		   unsigned int ncpus, uint32_t tsc_khz, struct kvm_cpuid2 **out)
{
	size_t sz = sizeof(*supported) +
		    (supported->nent + CPUID_EXTRA) * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = calloc(1, sz);
	struct kvm_cpuid_entry2 *e;
	uint32_t apic_id = index;

	if (!c)
		return -ENOMEM;
	/* Copy all but the topology leaves, which are rebuilt below. */
	for (uint32_t i = 0; i < supported->nent; i++) {
		const struct kvm_cpuid_entry2 *s = &supported->entries[i];

		if (s->function == 0xb || s->function == 0x1f || s->function == CPUID_TSC_LEAF)
			continue;
		c->entries[c->nent++] = *s;
	}

	e = cpuid_find(c, 0, 0);
	if (e && e->eax < 0xb)
		e->eax = 0xb;
	e = cpuid_find(c, 1, 0);
	if (e) {
		e->ebx = (e->ebx & 0xffff) | (apic_id << 24) |
			 ((ncpus > 255 ? 255u : ncpus) << 16);
		if (ncpus > 1)
			e->edx |= 1u << 28;    /* HTT: several logical CPUs per package */
		e->ecx |= 1u << 31;            /* running under a hypervisor */
	}
	/* Leaf 4: cores per package; the last-level cache is shared by all. */
	for (uint32_t i = 0; i < c->nent; i++) {
		e = &c->entries[i];
		if (e->function != 4 || (e->eax & 0x1f) == 0)
			continue;
		e->eax &= 0x3ff;
		e->eax |= (ncpus - 1) << 26;
		if (((e->eax >> 5) & 7) >= 3)
			e->eax |= (ncpus - 1) << 14;
	}
	/* Leaf 0xB: one thread per core, ncpus cores in one package. */
	cpuid_add(c, (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = 0, .ebx = 1, .ecx = (1u << 8) | 0, .edx = apic_id });
	cpuid_add(c, (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = cpuid_order(ncpus), .ebx = ncpus, .ecx = (2u << 8) | 1, .edx = apic_id });
	cpuid_add(c, (struct kvm_cpuid_entry2){
		.function = 0xb, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.ecx = 2, .edx = apic_id });
	/* The hypervisor timing leaf (as QEMU's vmware-cpuid-freq): lets a guest
	 * read the TSC frequency instead of calibrating it. */
	e = cpuid_find(c, 0x40000000, 0);
	if (e && tsc_khz) {
		if (e->eax < CPUID_TSC_LEAF)
			e->eax = CPUID_TSC_LEAF;
		cpuid_add(c, (struct kvm_cpuid_entry2){
			.function = CPUID_TSC_LEAF, .eax = tsc_khz, .ebx = 1000000 });
	}
	*out = c;
	return 0;
}
