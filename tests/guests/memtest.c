/* memtest: the memory workload checkpoint tests rely on.
 *
 * A region of mem.mib MiB starts at the first 2 MiB boundary above the image;
 * right after it lies gens[], one u32 generation per 4 KiB page, so both are
 * saved with guest RAM by a checkpoint. Page p at generation g holds
 *   word[w] = memtest_seed(p, g) ^ (w * 0x9E3779B97F4A7C15).
 * vCPU c owns the pages p with p % ncpu == c: it fills them at generation 1,
 * then walks them in a stride pattern: verify against gens[p], bump, rewrite,
 * paced to mem.rate MiB/s, with a heartbeat line every mem.hb_ms. After
 * mem.secs every owner verifies all its pages once more and the boot vCPU
 * prints the verdict. The TSC may jump (restore): deadlines restart from
 * "now" instead of catching up (forward) or stalling (backward).
 * mem.idle=1 (benchmarks): after the fill print a "filled" line, then only
 * heartbeats, no rewrites, so the memory stays as filled. */
#include "kit.h"

#define PAGE_SIZE	4096
#define PAGE_WORDS	(PAGE_SIZE / 8)
#define MISMATCH_PRINT_MAX	10
#define BURST_NS	100000000ull	/* most credit a paused vCPU may bank */

struct memtest {
	uint64_t mib, rate, secs, hb_ms, inject, idle;
	unsigned int ncpu;
	uint64_t base;
	uint64_t npages;
	uint32_t *gens;
	uint64_t t0_ns;
	uint64_t errors[KIT_MAX_CPUS];
};

struct memtest_cpu {
	unsigned int cpu;
	uint64_t own;			/* pages owned */
	uint64_t rewrites, verified, errors;
	unsigned int printed;		/* MISMATCH lines so far */
	uint64_t hb_seq, hb_next_ns;
};

static struct memtest mt;

static uint64_t memtest_seed(uint64_t page, uint32_t gen)
{
	uint64_t x = (page << 32 | gen) ^ 0x6a09e667f3bcc909ull;

	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t *memtest_page(uint64_t p)
{
	return (uint64_t *)(uintptr_t)(mt.base + p * PAGE_SIZE);
}

static void memtest_write(uint64_t p, uint32_t gen)
{
	uint64_t *w = memtest_page(p), seed = memtest_seed(p, gen);

	for (uint64_t i = 0; i < PAGE_WORDS; i++)
		w[i] = seed ^ (i * 0x9e3779b97f4a7c15ull);
	mt.gens[p] = gen;
}

/* Check page p against gens[p]; report the first bad word. */
static bool memtest_verify(struct memtest_cpu *mc, uint64_t p)
{
	const volatile uint64_t *w = memtest_page(p);
	uint32_t gen = mt.gens[p];
	uint64_t seed = memtest_seed(p, gen);

	mc->verified++;
	for (uint64_t i = 0; i < PAGE_WORDS; i++) {
		uint64_t want = seed ^ (i * 0x9e3779b97f4a7c15ull), got = w[i];

		if (got == want)
			continue;
		mc->errors++;
		if (mc->printed++ < MISMATCH_PRINT_MAX)
			kit_printf("MISMATCH cpu=%u page=%llu gen=%u word=%llu got=0x%016llx want=0x%016llx\n",
				   mc->cpu, (unsigned long long)p, gen,
				   (unsigned long long)i, (unsigned long long)got,
				   (unsigned long long)want);
		return false;
	}
	return true;
}

static void memtest_heartbeat(struct memtest_cpu *mc, uint64_t now)
{
	uint64_t hb_ns = mt.hb_ms * 1000000;

	if (mc->hb_next_ns > now + hb_ns)	/* TSC went backwards */
		mc->hb_next_ns = now;
	if (now < mc->hb_next_ns)
		return;
	kit_printf("HB cpu=%u seq=%llu t_ms=%llu rewrites=%llu verified=%llu errors=%llu\n",
		   mc->cpu, (unsigned long long)++mc->hb_seq,
		   (unsigned long long)(now > mt.t0_ns ? (now - mt.t0_ns) / 1000000 : 0),
		   (unsigned long long)mc->rewrites,
		   (unsigned long long)mc->verified,
		   (unsigned long long)mc->errors);
	mc->hb_next_ns += hb_ns;
	if (mc->hb_next_ns <= now)
		mc->hb_next_ns = now + hb_ns;
}

static uint64_t memtest_gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* A stride coprime with own, so the walk visits every owned page once per
 * lap in a scattered order (dirty pages spread over the whole region). */
static uint64_t memtest_stride(uint64_t own)
{
	uint64_t s = 7919;

	if (own <= 1)
		return 1;
	s %= own;
	while (s == 0 || memtest_gcd(s, own) != 1)
		s = (s + 1) % own;
	return s;
}

/* Boot vCPU: parameters, placement, the start line. */
static void memtest_setup(void)
{
	uint64_t gens_bytes, end;

	mt.mib = kit_param_u64("mem.mib", 64);
	mt.rate = kit_param_u64("mem.rate", 0);
	mt.secs = kit_param_u64("mem.secs", 5);
	mt.hb_ms = kit_param_u64("mem.hb_ms", 500);
	mt.inject = kit_param_u64("mem.inject", 0);
	mt.idle = kit_param_u64("mem.idle", 0);
	mt.ncpu = kit_cpu_count();
	if (!mt.mib || mt.mib > (1ull << 24))
		kit_panic("memtest: mem.mib=%llu out of range", (unsigned long long)mt.mib);
	if (!mt.hb_ms)
		mt.hb_ms = 500;
	mt.base = ((uint64_t)(uintptr_t)_end + (2 << 20) - 1) & ~((2ull << 20) - 1);
	mt.npages = mt.mib << 8;
	mt.gens = (uint32_t *)(uintptr_t)(mt.base + (mt.mib << 20));
	gens_bytes = mt.npages * sizeof(uint32_t);
	end = mt.base + (mt.mib << 20) + gens_bytes;
	if (!kit_ram_contains(mt.base, end - mt.base))
		kit_panic("memtest: region 0x%llx..0x%llx (%llu MiB + generation array) is not inside one e820 RAM range (%llu MiB RAM)",
			  (unsigned long long)mt.base, (unsigned long long)end,
			  (unsigned long long)mt.mib,
			  (unsigned long long)kit_ram_mib());
	kit_printf("MEMTEST start cpus=%u mib=%llu rate=%llu secs=%llu base=0x%llx\n",
		   mt.ncpu, (unsigned long long)mt.mib, (unsigned long long)mt.rate,
		   (unsigned long long)mt.secs, (unsigned long long)mt.base);
	mt.t0_ns = kit_now_ns();
}

/* The rewrite loop of one vCPU until mem.secs have passed (or forever). */
static void memtest_run(struct memtest_cpu *mc)
{
	uint64_t stride = memtest_stride(mc->own), k = 0;
	uint64_t end_ns = mt.t0_ns + mt.secs * 1000000000ull;
	/* Pacing in picoseconds per page: rate MiB/s = rate * 256 pages/s. */
	uint64_t cost_ps = mt.rate ? 1000000000000ull / (mt.rate * 256) : 0;
	uint64_t next_ps = kit_now_ns() * 1000;

	for (;;) {
		uint64_t now = kit_now_ns(), now_ps = now * 1000;
		unsigned int batch = cost_ps ? 1 : 8;

		memtest_heartbeat(mc, now);
		if (mt.secs && now >= end_ns)
			return;
		if (mt.idle) {
			kit_cpu_relax();
			continue;
		}
		if (cost_ps) {
			if (next_ps > now_ps + BURST_NS * 1000)	/* TSC went back */
				next_ps = now_ps;
			if (now_ps < next_ps) {
				kit_cpu_relax();
				continue;
			}
			if (next_ps + BURST_NS * 1000 < now_ps)
				next_ps = now_ps - BURST_NS * 1000;
			next_ps += cost_ps;
		}
		while (batch--) {
			uint64_t p = mc->cpu + k * mt.ncpu;

			memtest_verify(mc, p);
			memtest_write(p, mt.gens[p] + 1);
			mc->rewrites++;
			k += stride;
			if (k >= mc->own)
				k -= mc->own;
		}
	}
}

void kit_main(unsigned int cpu, const void *boot_params)
{
	struct memtest_cpu mc = { .cpu = cpu };
	uint64_t final_verified = 0;

	(void)boot_params;
	if (cpu == 0)
		memtest_setup();
	kit_barrier_wait();

	mc.own = cpu < mt.npages ? (mt.npages - cpu + mt.ncpu - 1) / mt.ncpu : 0;
	mc.hb_next_ns = mt.t0_ns + mt.hb_ms * 1000000;
	for (uint64_t p = cpu; p < mt.npages; p += mt.ncpu)
		memtest_write(p, 1);
	if (mt.idle)
		kit_printf("MEMTEST filled cpu=%u pages=%llu ms=%llu\n", cpu,
			   (unsigned long long)mc.own,
			   (unsigned long long)((kit_now_ns() - mt.t0_ns) / 1000000));
	/* Self-test of the checker: corrupt one word of each of the first
	 * mem.inject pages this vCPU owns, behind the generation's back. */
	for (uint64_t i = 0; i < mt.inject && i < mc.own; i++)
		memtest_page(cpu + i * mt.ncpu)[7] ^= 1;
	if (mc.own)
		memtest_run(&mc);

	for (uint64_t p = cpu; p < mt.npages; p += mt.ncpu) {
		memtest_verify(&mc, p);
		final_verified++;
	}
	mt.errors[cpu] = mc.errors;
	kit_printf("MEMTEST done cpu=%u verified=%llu errors=%llu\n", cpu,
		   (unsigned long long)final_verified,
		   (unsigned long long)mc.errors);
	kit_barrier_wait();
	if (cpu == 0) {
		uint64_t total = 0;

		for (unsigned int i = 0; i < mt.ncpu; i++)
			total += mt.errors[i];
		if (total)
			kit_printf("MEMTEST result=FAIL errors=%llu\n",
				   (unsigned long long)total);
		else
			kit_printf("MEMTEST result=PASS\n");
	}
}
