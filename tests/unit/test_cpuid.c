/* Per-vCPU CPUID: APIC id, topology, hypervisor bit and the TSC leaf,
 * adjusted from a supported list like the one KVM returns. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/cpuid.h"

#include <linux/kvm.h>
#include <stdlib.h>

static struct kvm_cpuid2 *supported(void)
{
	static const struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd, .ebx = 0x756e6547 },
		{ .function = 1, .eax = 0x906ea, .ebx = 0x00ff0800, .ecx = 0x7ffafbff, .edx = 0x0fabfbff },
		{ .function = 4, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x121 },
		{ .function = 4, .index = 1, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x163 },
		{ .function = 4, .index = 2, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .eax = 0x3c063 },  /* L3 unified, had "shared by 16" */
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 99 },
		{ .function = 0x1f, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX, .ebx = 99 },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
		{ .function = 0x40000001, .eax = 0x1 },
	};
	size_t n = sizeof(e) / sizeof(e[0]);
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(e[0]));

	c->nent = (uint32_t)n;
	for (size_t i = 0; i < n; i++)
		c->entries[i] = e[i];
	return c;
}

static const struct kvm_cpuid_entry2 *find(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static void test_per_vcpu_ids(void **state)
{
	struct kvm_cpuid2 *sup = supported();

	for (unsigned int cpu = 0; cpu < 4; cpu++) {
		struct kvm_cpuid2 *c;
		const struct kvm_cpuid_entry2 *e;

		assert_int_equal(cpuid_for_vcpu(sup, cpu, 4, 2600000, &c), 0);
		e = find(c, 1, 0);
		assert_int_equal(e->ebx >> 24, cpu);                /* APIC id */
		assert_int_equal((e->ebx >> 16) & 0xff, 4);         /* logical CPUs */
		assert_int_equal(e->ebx & 0xffff, 0x0800);          /* rest untouched */
		assert_true(e->ecx & (1u << 31));                   /* hypervisor */
		assert_true(e->edx & (1u << 28));                   /* HTT */
		assert_int_equal(find(c, 0xb, 0)->edx, cpu);        /* x2APIC id */
		assert_int_equal(find(c, 0xb, 1)->edx, cpu);
		free(c);
	}
	free(sup);
}

static void test_topology(void **state)
{
	struct kvm_cpuid2 *sup = supported(), *c;
	const struct kvm_cpuid_entry2 *e;

	assert_int_equal(cpuid_for_vcpu(sup, 0, 3, 0, &c), 0);
	assert_int_equal(find(c, 0, 0)->eax, 0xd);              /* max leaf kept (>= 0xb) */
	e = find(c, 0xb, 0);                                    /* SMT level: 1 thread */
	assert_int_equal(e->ebx, 1);
	assert_int_equal((e->ecx >> 8) & 0xff, 1);
	assert_int_equal(e->eax, 0);
	e = find(c, 0xb, 1);                                    /* core level: 3 cores */
	assert_int_equal(e->ebx, 3);
	assert_int_equal((e->ecx >> 8) & 0xff, 2);
	assert_int_equal(e->eax, 2);                            /* ceil(log2(3)) */
	assert_non_null(find(c, 0xb, 2));                       /* terminator */
	assert_null(find(c, 0x1f, 0));                          /* v2 topology dropped */
	/* Leaf 4: cores per package; the L3 (level 3) shared by all. */
	assert_int_equal(find(c, 4, 0)->eax >> 26, 2);
	assert_int_equal((find(c, 4, 0)->eax >> 14) & 0xfff, 0);
	assert_int_equal((find(c, 4, 2)->eax >> 14) & 0xfff, 2);
	/* One vCPU: no HTT. */
	free(c);
	assert_int_equal(cpuid_for_vcpu(sup, 0, 1, 0, &c), 0);
	assert_false(find(c, 1, 0)->edx & (1u << 28));
	free(c);
	free(sup);
}

static void test_tsc_leaf(void **state)
{
	struct kvm_cpuid2 *sup = supported(), *c;

	assert_int_equal(cpuid_for_vcpu(sup, 0, 1, 2600000, &c), 0);
	assert_int_equal(find(c, 0x40000000, 0)->eax, CPUID_TSC_LEAF);
	assert_int_equal(find(c, CPUID_TSC_LEAF, 0)->eax, 2600000);
	assert_int_equal(find(c, CPUID_TSC_LEAF, 0)->ebx, 1000000);
	free(c);
	/* Unknown TSC frequency: no leaf, no false promise. */
	assert_int_equal(cpuid_for_vcpu(sup, 0, 1, 0, &c), 0);
	assert_null(find(c, CPUID_TSC_LEAF, 0));
	assert_int_equal(find(c, 0x40000000, 0)->eax, 0x40000001);
	free(c);
	free(sup);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_vcpu_ids),
		cmocka_unit_test(test_topology),
		cmocka_unit_test(test_tsc_leaf),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
