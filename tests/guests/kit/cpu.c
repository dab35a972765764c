/* Guest kit vCPU services: vCPU count, TSC time, spinlocks, the all-vCPU
 * barrier, exit and panic. Everything here runs in ring 3. */
#include "kit_internal.h"

#define TSC_KHZ_GUESS	2000000		/* 2 GHz when CPUID does not say */
#define I8042_CMD	0x64
#define I8042_RESET	0xfe
#define QEMU_DEBUG_EXIT	0xf4

static unsigned int cpu_count = 1;
static uint64_t cpu_tsc_khz = TSC_KHZ_GUESS;
static bool cpu_tsc_guessed;
static uint32_t cpu_tsc_noted;
static uint64_t cpu_tsc0;

static uint32_t barrier_count;
static uint32_t barrier_generation;

uint64_t kit_rdtsc(void)
{
	uint32_t lo, hi;

	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

/* Boot vCPU, before the others are released: vCPU count and TSC rate from
 * the CPUID values kit_entry64 read in ring 0. Prints nothing: a guest's
 * first line must be its own. */
void kit_cpu_init(bool have_boot_params, const struct kit_boot_cpuid *id)
{
	cpu_tsc0 = kit_rdtsc();
	cpu_tsc_guessed = true;
	if (id->hv_max >= 0x40000010 && id->hv_max < 0x40000100 && id->hv_tsc_khz) {
		cpu_tsc_khz = id->hv_tsc_khz;
		cpu_tsc_guessed = false;
	}
	cpu_count = 1;
	if (!have_boot_params)
		return;		/* QEMU PVH/multiboot: the boot vCPU only */
	if (id->max_basic >= 0xb && (id->leafb1_ebx & 0xffff))
		cpu_count = id->leafb1_ebx & 0xffff;
	if (cpu_count > KIT_MAX_CPUS)
		cpu_count = KIT_MAX_CPUS;
}

unsigned int kit_cpu_count(void)
{
	return cpu_count;
}

uint64_t kit_tsc_khz(void)
{
	if (cpu_tsc_guessed && !__atomic_exchange_n(&cpu_tsc_noted, 1, __ATOMIC_RELAXED))
		kit_printf("kit: no TSC frequency in CPUID 0x40000010, assuming %llu kHz\n",
			   (unsigned long long)TSC_KHZ_GUESS);
	return cpu_tsc_khz;
}

/* Two 64-bit divisions instead of a 128-bit product: no libgcc needed.
 * A TSC below the boot value (restored elsewhere without IA32_TSC) reads 0. */
uint64_t kit_now_ns(void)
{
	uint64_t khz = kit_tsc_khz(), tsc = kit_rdtsc();
	uint64_t t = tsc > cpu_tsc0 ? tsc - cpu_tsc0 : 0;

	return t / khz * 1000000 + t % khz * 1000000 / khz;
}

void kit_delay_ns(uint64_t ns)
{
	uint64_t end = kit_now_ns() + ns;

	while (kit_now_ns() < end)
		kit_cpu_relax();
}

void kit_spin_lock(uint32_t *lock)
{
	while (__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
		while (__atomic_load_n(lock, __ATOMIC_RELAXED))
			kit_cpu_relax();
}

void kit_spin_unlock(uint32_t *lock)
{
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

/* Generation barrier: the last arrival resets the count and bumps the
 * generation the others spin on, so it can be reused at once. */
void kit_barrier_wait(void)
{
	uint32_t gen = __atomic_load_n(&barrier_generation, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&barrier_count, 1, __ATOMIC_ACQ_REL) == cpu_count) {
		__atomic_store_n(&barrier_count, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&barrier_generation, gen + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&barrier_generation, __ATOMIC_ACQUIRE) == gen)
		kit_cpu_relax();
}

/* Ring 3 cannot lidt (and PVM turns "int n" into #UD), but the IDT is
 * ordinary memory: clear every gate, then fault. Delivery fails, #DF fails,
 * the vCPU triple-faults. Other vCPUs lose their IDT too: the VM is ending. */
void kit_die(void)
{
	volatile uint64_t *idt = (volatile uint64_t *)(uintptr_t)(KIT_FIXED_BASE + KIT_IDT_OFF);

	for (unsigned int i = 0; i < KIT_IDT_ENTRIES * 2; i++)
		idt[i] = 0;
	__asm__ volatile("" ::: "memory");
	for (;;)
		__asm__ volatile("ud2" ::: "memory");
}

/* vmm ends at the i8042 reset; QEMU microvm has no i8042 and ends at its
 * isa-debug-exit device (vmm ignores that port). A VMM stops the vCPU from
 * another thread, which may take a while on a loaded host, so wait up to
 * KIT_EXIT_GRACE_NS before the triple fault that ends any VMM. */
#define KIT_EXIT_GRACE_NS	5000000000ull

void kit_exit(void)
{
	kit_outb(I8042_CMD, I8042_RESET);
	kit_outb(QEMU_DEBUG_EXIT, 0);
	kit_delay_ns(KIT_EXIT_GRACE_NS);
	kit_puts("kit: still running 5 s after the i8042 reset; triple-faulting\n");
	kit_die();
}

void kit_panic(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	kit_spin_lock(&kit_console_lock);
	kit_console_puts_locked("PANIC: ");
	kit_console_vprintf_locked(fmt, ap);
	kit_console_puts_locked("\n");
	kit_spin_unlock(&kit_console_lock);
	va_end(ap);
	kit_die();
}

void kit_park(void)
{
	for (;;)
		kit_cpu_relax();
}
