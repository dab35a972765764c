/* hello: the smallest end-to-end guest. The boot vCPU prints
 * "hello from vmm guest" first thing (the boot benchmark times that line),
 * every vCPU does a little real work and checks in, and the boot vCPU
 * prints a summary and exits through the i8042 reset.
 *   hello.crash=1  triple-fault on purpose right after the first line
 *   hello.wait=1   do not exit: print "tick <k>" about every 100 ms
 *   hello.echo=1   read console input: print "echo: <line>" for each line
 *                  (ended by \n or \r); the line "quit" exits */
#include "kit.h"

#define HELLO_WORK_N	(1u << 20)
#define HELLO_CHECKIN_TIMEOUT_NS	30000000000ull
#define HELLO_TICK_NS	100000000ull

static uint32_t hello_first_line_done;
static uint32_t hello_online;
static uint64_t hello_result[KIT_MAX_CPUS];

/* Sum of [cpu * N, (cpu + 1) * N); the barrier keeps the compiler from
 * replacing the loop by its closed form. */
static uint64_t hello_sum(unsigned int cpu)
{
	uint64_t acc = 0, base = (uint64_t)cpu * HELLO_WORK_N;

	for (uint64_t i = 0; i < HELLO_WORK_N; i++) {
		acc += base + i;
		__asm__ volatile("" : "+r"(acc));
	}
	return acc;
}

static uint64_t hello_sum_expected(unsigned int cpu)
{
	uint64_t n = HELLO_WORK_N, base = (uint64_t)cpu * n;

	return n * base + n * (n - 1) / 2;
}

static void hello_wait_all(unsigned int ncpu)
{
	uint64_t deadline = kit_now_ns() + HELLO_CHECKIN_TIMEOUT_NS;

	while (__atomic_load_n(&hello_online, __ATOMIC_ACQUIRE) < ncpu) {
		if (kit_now_ns() > deadline)
			kit_panic("hello: only %u of %u vCPUs checked in after 30 s",
				  __atomic_load_n(&hello_online, __ATOMIC_RELAXED), ncpu);
		kit_cpu_relax();
	}
	for (unsigned int i = 0; i < ncpu; i++) {
		if (hello_result[i] != hello_sum_expected(i))
			kit_panic("hello: cpu %u computed 0x%llx, expected 0x%llx", i,
				  (unsigned long long)hello_result[i],
				  (unsigned long long)hello_sum_expected(i));
	}
}

/* Heartbeat forever; deadlines restart from "now" so a TSC jump (restore)
 * causes neither a burst of ticks nor a stall. */
static void hello_tick_forever(void)
{
	uint64_t next = kit_now_ns() + HELLO_TICK_NS;

	for (uint64_t k = 1;; k++) {
		uint64_t now;

		while ((now = kit_now_ns()) < next) {
			if (next > now + HELLO_TICK_NS)	/* TSC went backwards */
				next = now;
			kit_cpu_relax();
		}
		kit_printf("tick %llu\n", (unsigned long long)k);
		next += HELLO_TICK_NS;
		if (next <= now)
			next = now + HELLO_TICK_NS;
	}
}

/* Echo console input line by line; "quit" ends the guest. */
static void hello_echo(void)
{
	char line[128];
	size_t n = 0;

	kit_puts("echo: ready\n");
	for (;;) {
		int c = kit_getc_nowait();

		if (c < 0) {
			kit_cpu_relax();
			continue;
		}
		if (c != '\n' && c != '\r') {
			if (n < sizeof(line) - 1)
				line[n++] = (char)c;
			continue;
		}
		if (n == 0)
			continue;
		line[n] = '\0';
		n = 0;
		kit_printf("echo: %s\n", line);
		if (strcmp(line, "quit") == 0)
			return;
	}
}

void kit_main(unsigned int cpu, const void *boot_params)
{
	unsigned int ncpu = kit_cpu_count();
	bool wait;

	(void)boot_params;
	if (cpu == 0) {
		kit_puts("hello from vmm guest\n");
		if (kit_param_u64("hello.crash", 0)) {
			kit_puts("hello: hello.crash=1, triple-faulting on purpose\n");
			kit_die();
		}
		__atomic_store_n(&hello_first_line_done, 1, __ATOMIC_RELEASE);
	} else {
		while (!__atomic_load_n(&hello_first_line_done, __ATOMIC_ACQUIRE))
			kit_cpu_relax();
	}
	wait = kit_param_u64("hello.wait", 0) != 0;

	hello_result[cpu] = hello_sum(cpu);
	kit_printf("cpu %u online\n", cpu);
	__atomic_add_fetch(&hello_online, 1, __ATOMIC_RELEASE);
	if (cpu != 0) {
		kit_park();	/* spin (ring 3 cannot hlt) */
	}

	hello_wait_all(ncpu);
	kit_printf("hello: %u vCPUs, %llu MiB RAM, cmdline \"%s\"\n", ncpu,
		   (unsigned long long)kit_ram_mib(), kit_cmdline());
	kit_printf("all %u vCPUs done\n", ncpu);
	if (kit_param_u64("hello.echo", 0))
		hello_echo();
	if (wait)
		hello_tick_forever();
}
