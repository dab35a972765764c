/* irqtest: device interrupts through the in-kernel IOAPIC into ring 3.
 *
 * Drives the virtio-rng queue (vmm --rng) one request at a time and waits
 * for each completion by watching the kit's interrupt counter (not the used
 * ring), then reads InterruptStatus, writes InterruptACK and checks the used
 * ring. Modes: poll (no interrupt, the baseline), edge and level trigger of
 * the IOAPIC entry. See README.md for parameters and output. */
#include "kit.h"
#include "virtio.h"

#define VMMIO_INTERRUPT_STATUS	0x060
#define VMMIO_INTERRUPT_ACK	0x064
#define VRING_AVAIL_F_NO_INTERRUPT 1

#define MAX_REQ			1000
#define SLACK			2	/* extra interrupts tolerated per mode */
#define IOAPIC_REMOTE_IRR	(1ull << 14)
#define TIMER_VECTOR		0xf0	/* LAPIC timer: wakes hlt waits */

enum mode { MODE_POLL, MODE_EDGE, MODE_LEVEL };
static const char *const mode_names[] = { "poll", "edge", "level" };

static struct kit_virtio_dev devs[KIT_VIRTIO_MAX_DEVS];
static struct kit_vrng rng;
static uint64_t lat_ns[MAX_REQ];

static unsigned int dest_cpu;
static uint32_t test_done;		/* set by the driving vCPU at the end */
static bool failed;
static char fail_reason[160];

static uint64_t total_req;
static uint32_t total_irq;
static bool debug;
static char if_buf[16], wait_buf[16];
static const char *if_method, *wait_method;

static void fail(const char *fmt, ...) KIT_PRINTF(1, 2);
static void fail(const char *fmt, ...)
{
	va_list ap;

	if (failed)
		return;
	failed = true;
	va_start(ap, fmt);
	kit_vsnprintf(fail_reason, sizeof(fail_reason), fmt, ap);
	va_end(ap);
}

static uint32_t mmio_rd(const struct kit_virtio_dev *dev, uint32_t off)
{
	return *(volatile uint32_t *)(uintptr_t)(dev->base + off);
}

static void mmio_wr(const struct kit_virtio_dev *dev, uint32_t off, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)(dev->base + off) = v;
}

static uint64_t tsc_to_ns(uint64_t t)
{
	uint64_t khz = kit_tsc_khz();

	return t / khz * 1000000 + t % khz * 1000000 / khz;
}

static void sort(uint64_t *v, unsigned int n)
{
	for (unsigned int i = 1; i < n; i++) {
		uint64_t x = v[i];
		unsigned int j = i;

		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

/* IF on for this vCPU, the way irq.if= says; false if IF did not stick. */
static bool irq_on(void)
{
	if (!strcmp(if_method, "popf"))
		kit_irq_popf(true);
	else if (!strcmp(if_method, "sti"))
		kit_irq_enable();
	return true;
}

static void irq_off(void)
{
	if (!strcmp(if_method, "popf"))
		kit_irq_popf(false);
	else if (!strcmp(if_method, "sti"))
		kit_irq_disable();
}

/* Debug (irq.debug=1): LAPIC ISR/IRR of the vector and the IOAPIC entry
 * (bit 14 = remote IRR) at a point of request i (first 3 requests). */
static void debug_state(const char *where, unsigned int i, unsigned int pin, unsigned int vector)
{
	if (i >= 3 || !debug)
		return;
	kit_printf("IRQ debug request=%u at=%s count=%u lapic_isr=%d lapic_irr=%d "
		   "ioapic=0x%llx\n", i, where, kit_irq_count(dest_cpu, vector),
		   dest_cpu == kit_lapic_id() ? kit_lapic_in_service(vector) : -1,
		   dest_cpu == kit_lapic_id() ? kit_lapic_pending(vector) : -1,
		   (unsigned long long)kit_ioapic_entry(pin));
}

/* One mode: n requests, one at a time. Returns false if it failed. */
static bool run_mode(enum mode m, bool hlt, unsigned int pin, unsigned int vector,
		     unsigned int n, bool must_pass)
{
	const char *wait = m == MODE_POLL ? "poll" : hlt ? "hlt" : "spin";
	struct kit_virtio_dev *dev = rng.dev;
	uint32_t c_start = kit_irq_count(dest_cpu, vector), c = 0;
	unsigned int lost = 0, bad_isr = 0, extra = 0, done = 0, stuck = 0, max_at = 0;
	uint64_t max_ns = 0;
	uint64_t timeout_tsc = kit_tsc_khz() * 1000;	/* 1 s */
	uint64_t t_mode = kit_now_ns();
	char why[96] = "";

	rng.vq.avail[0] = m == MODE_POLL ? VRING_AVAIL_F_NO_INTERRUPT : 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (m == MODE_POLL) {
		kit_ioapic_mask(pin);
	} else {
		/* Level: ring 3 sends the EOI after the ACK has lowered the line. */
		kit_irq_defer_eoi(vector, m == MODE_LEVEL);
		if (kit_ioapic_route(pin, vector, dest_cpu, m == MODE_LEVEL))
			kit_panic("irqtest: cannot route IOAPIC pin %u", pin);
	}
	/* hlt: IF stays clear in ring 3 and interrupts are taken inside the
	 * kit's ring-0 "sti; hlt" only ("cli; check; hlt", no lost wake-up);
	 * the LAPIC timer wakes the loop every 10 ms to check its timeout. */
	if (hlt) {
		kit_irq_disable();
		kit_lapic_timer(TIMER_VECTOR, 10000000, true);
	}

	for (unsigned int i = 0; i < n; i++) {
		struct kit_vbuf b = { rng.buf, 64 };
		uint32_t before = kit_irq_count(dest_cpu, vector), got, isr;
		uint64_t token, t0, t1;
		int ret;

		if (kit_virtq_add(&rng.vq, &b, 0, 1, i) < 0)
			kit_panic("irqtest: virtq_add failed");
		t0 = kit_rdtsc();
		kit_virtq_kick(&rng.vq);
		if (m == MODE_POLL) {
			while (!(ret = kit_virtq_get(&rng.vq, &token, &got))) {
				if (kit_rdtsc() - t0 > timeout_tsc)
					break;
				kit_cpu_relax();
			}
			t1 = kit_rdtsc();
			if (ret != 1)
				kit_panic("irqtest: poll: request %u not completed in 1 s", i);
			lat_ns[done++] = tsc_to_ns(t1 - t0);
			/* No interrupt asked for; clear a status the device may set anyway. */
			isr = mmio_rd(dev, VMMIO_INTERRUPT_STATUS);
			if (isr)
				mmio_wr(dev, VMMIO_INTERRUPT_ACK, isr);
			continue;
		}
		while ((c = kit_irq_count(dest_cpu, vector)) == before) {
			if (kit_rdtsc() - t0 > timeout_tsc)
				break;
			if (hlt)
				kit_irq_wait();
			else
				kit_cpu_relax();
		}
		t1 = kit_rdtsc();
		if (c == before) {
			if (!lost++)
				kit_printf("IRQ lost mode=%s wait=%s request=%u status=0x%x used=%d\n",
					   mode_names[m], wait, i,
					   mmio_rd(dev, VMMIO_INTERRUPT_STATUS),
					   rng.vq.used[1] != rng.vq.last_used);
		} else {
			lat_ns[done] = tsc_to_ns(t1 - t0);
			if (lat_ns[done] > max_ns) {
				max_ns = lat_ns[done];
				max_at = i;
			}
			done++;
		}
		debug_state("interrupt", i, pin, vector);
		isr = mmio_rd(dev, VMMIO_INTERRUPT_STATUS);
		if (!(isr & 1))
			bad_isr++;
		mmio_wr(dev, VMMIO_INTERRUPT_ACK, isr);
		debug_state("ack", i, pin, vector);
		if (m == MODE_LEVEL && c != before) {
			kit_lapic_eoi();
			/* The EOI must clear the IOAPIC's remote IRR (the line is low). */
			if (kit_ioapic_entry(pin) & IOAPIC_REMOTE_IRR)
				stuck++;
		}
		debug_state("eoi", i, pin, vector);
		ret = kit_virtq_get(&rng.vq, &token, &got);
		if (ret == 0) {		/* interrupt seen before the used entry? */
			uint64_t t = kit_rdtsc();

			while (ret == 0 && kit_rdtsc() - t < timeout_tsc)
				ret = kit_virtq_get(&rng.vq, &token, &got);
		}
		if (ret != 1 || token != i)
			kit_panic("irqtest: %s: request %u: used ring ret=%d token=%llu",
				  mode_names[m], i, ret, (unsigned long long)token);
	}
	if (hlt) {
		kit_lapic_timer(TIMER_VECTOR, 0, false);
		kit_irq_enable();
	}
	if (m != MODE_POLL) {
		kit_delay_ns(2000000);	/* late or repeated interrupts show up here */
		c = kit_irq_count(dest_cpu, vector) - c_start;
		extra = c > n ? c - n : 0;
		kit_ioapic_mask(pin);
		kit_irq_defer_eoi(vector, false);
	}
	sort(lat_ns, done);
	kit_printf("IRQ rng mode=%s wait=%s pin=%u vector=%u dest=%u requests=%u interrupts=%u "
		   "us_per_request=%llu.%01llu us_min=%llu us_max=%llu max_at=%u lost=%u bad_status=%u "
		   "remote_irr_stuck=%u ms=%llu\n",
		   mode_names[m], wait, pin, vector, dest_cpu, n, c,
		   (unsigned long long)(done ? lat_ns[done / 2] / 1000 : 0),
		   (unsigned long long)(done ? lat_ns[done / 2] / 100 % 10 : 0),
		   (unsigned long long)(done ? lat_ns[0] / 1000 : 0),
		   (unsigned long long)(done ? lat_ns[done - 1] / 1000 : 0), max_at, lost, bad_isr,
		   stuck, (unsigned long long)((kit_now_ns() - t_mode) / 1000000));
	if (m == MODE_POLL)
		return true;
	if (lost)
		kit_snprintf(why, sizeof(why), "%s/%s: %u of %u interrupts lost",
			     mode_names[m], wait, lost, n);
	else if (extra > SLACK)
		kit_snprintf(why, sizeof(why), "%s/%s: %u interrupts for %u requests (storm)",
			     mode_names[m], wait, c, n);
	else if (stuck)
		kit_snprintf(why, sizeof(why), "%s/%s: IOAPIC remote IRR still set after %u EOIs",
			     mode_names[m], wait, stuck);
	else if (bad_isr)
		kit_snprintf(why, sizeof(why), "%s/%s: InterruptStatus clear at %u interrupts",
			     mode_names[m], wait, bad_isr);
	if (!why[0]) {
		total_req += n;
		total_irq += c;
		return true;
	}
	if (must_pass)
		fail("%s", why);
	else
		kit_printf("IRQ level_probe result=BROKEN reason=%s\n", why);
	return false;
}

static void other_vcpus_check(unsigned int vec_edge, unsigned int vec_level)
{
	for (unsigned int c = 0; c < kit_cpu_count(); c++) {
		uint32_t e, l;

		if (c == dest_cpu)
			continue;
		e = kit_irq_count(c, vec_edge);
		l = kit_irq_count(c, vec_level);
		if (e || l)
			fail("vCPU %u (not the destination) took %u+%u interrupts", c, e, l);
	}
}

/* Level trigger: irq.level=probe (default) runs one request first and, if
 * that shows the host's level-trigger problem (see README.md), reports it
 * and skips the mode; irq.level=1 runs all requests and fails on it;
 * irq.level=0 skips level. */
static void run_level(bool hlt, unsigned int pin, unsigned int vector, unsigned int n)
{
	char buf[8];
	const char *lv = kit_param_str("irq.level", "probe", buf, sizeof(buf));

	if (!strcmp(lv, "0"))
		return;
	if (!strcmp(lv, "probe") && !run_mode(MODE_LEVEL, hlt, pin, vector, 1, false))
		return;
	run_mode(MODE_LEVEL, hlt, pin, vector, n, true);
}

static void drive(unsigned int cpu)
{
	unsigned int ndev, skipped = 0, pin, vector, n;
	struct kit_virtio_dev *dev = NULL;
	uint64_t t_start = kit_now_ns();
	int ret;

	ndev = kit_virtio_discover(devs, KIT_VIRTIO_MAX_DEVS, &skipped);
	for (unsigned int i = 0; i < ndev; i++)
		if (devs[i].device_id == KIT_VIRTIO_ID_RNG && !dev)
			dev = &devs[i];
	if (!dev) {
		fail("no virtio-rng device on the command line (vmm run --rng)");
		return;
	}
	pin = dev->irq;
	vector = (unsigned int)kit_param_u64("irq.vector", 0x40);
	n = (unsigned int)kit_param_u64("irq.n", 100);
	if (n > MAX_REQ || n == 0)
		kit_panic("irqtest: irq.n=%u out of range 1..%u", n, MAX_REQ);
	if (vector < 32 || vector + 1 >= TIMER_VECTOR)
		kit_panic("irqtest: irq.vector=%u out of range 32..%u", vector, TIMER_VECTOR - 2);
	if (pin == 0 || pin >= kit_ioapic_pins()) {
		fail("rng irq %u is not an IOAPIC pin (pins 0..%u)", pin, kit_ioapic_pins() - 1);
		return;
	}
	ret = kit_vrng_init(&rng, dev);
	if (ret < 0) {
		fail("virtio-rng init: %d", ret);
		return;
	}
	kit_printf("IRQ setup cpu=%u lapic_id=%u dest=%u pin=%u if=%s wait=%s cpus=%u\n", cpu,
		   kit_lapic_id(), dest_cpu, pin, if_method, wait_method, kit_cpu_count());

	run_mode(MODE_POLL, false, pin, vector, n, true);
	if (strcmp(wait_method, "hlt")) {
		run_mode(MODE_EDGE, false, pin, vector, n, true);
		run_level(false, pin, vector + 1, n);
	}
	if (strcmp(wait_method, "spin")) {
		run_mode(MODE_EDGE, true, pin, vector, n, true);
		run_level(true, pin, vector + 1, n);
	}
	kit_virtio_reset(dev);
	kit_printf("IRQ rng pin=%u vector=%u requests=%llu interrupts=%u elapsed_ms=%llu\n",
		   pin, vector, (unsigned long long)total_req, total_irq,
		   (unsigned long long)((kit_now_ns() - t_start) / 1000000));
}

void kit_main(unsigned int cpu, const void *boot_params)
{
	unsigned int vec = (unsigned int)kit_param_u64("irq.vector", 0x40);

	(void)boot_params;
	if_method = kit_param_str("irq.if", "sti", if_buf, sizeof(if_buf));
	wait_method = kit_param_str("irq.wait", "both", wait_buf, sizeof(wait_buf));
	debug = kit_param_u64("irq.debug", 0);
	dest_cpu = (unsigned int)kit_param_u64("irq.dest", kit_cpu_count() - 1);
	if (dest_cpu >= kit_cpu_count())
		kit_panic("irqtest: irq.dest=%u but %u vCPUs", dest_cpu, kit_cpu_count());

	kit_lapic_enable();
	if (kit_lapic_id() != cpu)
		kit_panic("irqtest: vCPU %u has LAPIC id %u", cpu, kit_lapic_id());
	irq_on();
	kit_barrier_wait();
	if (cpu == dest_cpu) {
		drive(cpu);
		__atomic_store_n(&test_done, 1, __ATOMIC_RELEASE);
	} else {
		while (!__atomic_load_n(&test_done, __ATOMIC_ACQUIRE))
			kit_cpu_relax();
	}
	irq_off();
	kit_barrier_wait();
	if (cpu != 0)
		return;
	other_vcpus_check(vec, vec + 1);
	if (failed)
		kit_printf("IRQTEST result=FAIL reason=%s\n", fail_reason);
	else
		kit_printf("IRQTEST result=PASS\n");
	kit_exit();
}
