/* Guest kit ring-3 start: the boot vCPU reads boot_params and CPUID while
 * the others wait, then every vCPU runs the guest's kit_main. */
#include "kit_internal.h"

static uint32_t start_ready;

void kit_start(uint64_t cpu, uint64_t boot_params,
	       const struct kit_boot_cpuid *id)
{
	const void *bp = (const void *)(uintptr_t)boot_params;

	if (cpu == 0) {
		kit_boot_init(bp);
		kit_cpu_init(bp != NULL, id);
		__atomic_store_n(&start_ready, 1, __ATOMIC_RELEASE);
	} else {
		while (!__atomic_load_n(&start_ready, __ATOMIC_ACQUIRE))
			kit_cpu_relax();
		if (cpu >= kit_cpu_count())
			kit_panic("kit: vCPU %llu started but CPUID 0xB reports %u vCPUs",
				  (unsigned long long)cpu, kit_cpu_count());
	}
	if (bp && id->leaf1_ebx >> 24 != cpu)
		kit_panic("kit: vCPU %llu has APIC id %u in CPUID 1 (boot contract: equal)",
			  (unsigned long long)cpu, id->leaf1_ebx >> 24);
	kit_main((unsigned int)cpu, bp);
	if (cpu == 0)
		kit_exit();
	kit_park();
}
