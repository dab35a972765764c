/* vCPU and in-kernel chip state survive a save/load into a second VM.
 *
 * A hello guest ticks on 2 vCPUs; it is paused, its "irqchip", "pit",
 * "clock" and "cpu" sections are saved into a memory stream, its RAM is
 * copied into a freshly created second VM, the sections are loaded there,
 * and the second VM must carry on ticking from where the first stopped —
 * not boot again. Exit 77 (skipped, said loudly) without /dev/kvm. */
#include "snapshot/cpu_state.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"
#include "snapshot/vm_state.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define FAIL(...) do { fprintf(stderr, "FAIL: " __VA_ARGS__); fputc('\n', stderr); exit(1); } while (0)

static unsigned long best_tick(const char *log)
{
	unsigned long best = 0, t;

	for (const char *p = log; (p = strstr(p, "tick ")) != NULL; p += 5)
		if ((p == log || p[-1] == '\n') && sscanf(p, "tick %lu", &t) == 1 && t > best)
			best = t;
	return best;
}

/* Read console output until a line "tick N" with N >= want; returns the
 * highest N seen. With want 0, returns once output has been quiet 200 ms. */
static unsigned long wait_tick(int fd, unsigned long want, char *log, size_t logsz)
{
	size_t len = strlen(log);

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (want && best_tick(log) >= want)
			return best_tick(log);
		if (poll(&p, 1, want ? 20000 : 200) <= 0) {
			if (!want)
				return best_tick(log);
			FAIL("no tick %lu within 20 s; console so far:\n%s", want, log);
		}
		n = read(fd, log + len, logsz - len - 1);
		if (n <= 0)
			FAIL("console closed; so far:\n%s", log);
		len += (size_t)n;
		log[len] = '\0';
	}
}

static struct vm *start_vm(const struct vm_config *cfg, int out_fd)
{
	struct vm *vm;

	if (vm_create(cfg, out_fd, &vm) < 0)
		FAIL("vm_create");
	return vm;
}

static void register_all(struct snap_registry *reg, struct vm *vm)
{
	snap_registry_init(reg);
	if (vm_state_register(reg, vm) || cpu_state_register(reg, vm))
		FAIL("registering sections");
}

int main(void)
{
	static char log1[65536], log2[65536];
	char kernel[4096];
	const char *guests = getenv("GUESTS");
	struct vm_config cfg = { 0 };
	struct snap_registry reg1, reg2;
	struct snap_stream *out, *in;
	struct kvm_regs r1, r2;
	int p1[2], p2[2], err;
	unsigned long last, next;
	const uint8_t *data;
	size_t len;
	struct vm *vm1, *vm2;

	if (access("/dev/kvm", R_OK | W_OK)) {
		fprintf(stderr, "\n!!!! SKIPPED: /dev/kvm is not usable here (%s)\n\n", strerror(errno));
		return 77;
	}
	log_set_level(LOG_ERR);
	snprintf(kernel, sizeof(kernel), "%s/hello", guests ? guests : "build/tests/guests");
	cfg.kernel = kernel;
	cfg.cmdline = "hello.wait=1";
	cfg.mem_size = 64ULL << 20;
	cfg.ncpus = 2;
	if (pipe2(p1, O_CLOEXEC) || pipe2(p2, O_CLOEXEC))
		FAIL("pipe");

	vm1 = start_vm(&cfg, p1[1]);
	if (vm_start(vm1))
		FAIL("vm_start");
	wait_tick(p1[0], 3, log1, sizeof(log1));
	if (vm_pause(vm1))
		FAIL("vm_pause");
	usleep(50000);
	last = wait_tick(p1[0], 0, log1, sizeof(log1));   /* drain what was in flight */

	register_all(&reg1, vm1);
	if (snap_stream_open_mem_write(&out))
		FAIL("stream");
	for (unsigned int i = 0; i < reg1.n; i++) {
		err = reg1.sections[i].ops->save(reg1.sections[i].opaque, out);
		if (err || snap_stream_error(out))
			FAIL("saving section %s/%u: %s", reg1.sections[i].name,
			     reg1.sections[i].instance, strerror(-(err ? err : snap_stream_error(out))));
	}
	data = snap_stream_mem_data(out, &len);
	printf("saved %u sections, %zu bytes; the first VM's last tick: %lu\n", reg1.n, len, last);

	vm2 = start_vm(&cfg, p2[1]);
	memcpy(vm2->mem.host, vm1->mem.host, vm1->mem.size);
	register_all(&reg2, vm2);
	if (snap_stream_open_mem_read(data, len, &in))
		FAIL("stream");
	snap_registry_begin_load(&reg2);
	for (unsigned int i = 0; i < reg1.n; i++) {
		struct snap_section *sec;
		char why[256];

		if (snap_registry_match(&reg2, reg1.sections[i].name, reg1.sections[i].instance,
					reg1.sections[i].ops->version, &sec, why, sizeof(why)))
			FAIL("%s", why);
		err = sec->ops->load(sec->opaque, in, reg1.sections[i].ops->version);
		if (err)
			FAIL("loading section %s/%u: %s", sec->name, sec->instance, strerror(-err));
	}
	if (!snap_stream_at_eof(in))
		FAIL("state data left over after loading every section");
	for (unsigned int c = 0; c < cfg.ncpus; c++) {
		if (ioctl(vm1->vcpus[c].fd, KVM_GET_REGS, &r1) || ioctl(vm2->vcpus[c].fd, KVM_GET_REGS, &r2))
			FAIL("KVM_GET_REGS");
		if (memcmp(&r1, &r2, sizeof(r1)))
			FAIL("vCPU %u registers differ after load (rip 0x%llx vs 0x%llx)", c,
			     (unsigned long long)r1.rip, (unsigned long long)r2.rip);
	}

	if (vm_start(vm2))
		FAIL("vm_start of the restored VM");
	next = wait_tick(p2[0], last + 3, log2, sizeof(log2));
	if (strstr(log2, "hello from vmm guest"))
		FAIL("the restored guest booted again instead of carrying on:\n%s", log2);
	if (strstr(log2, "tick 1\n") && last >= 1)
		FAIL("the restored guest's ticks started over:\n%s", log2);
	printf("the restored VM carries on: tick %lu after %lu\n", next, last);

	snap_stream_close(out);
	snap_stream_close(in);
	vm_destroy(vm2);
	vm_destroy(vm1);
	printf("ok\n");
	return 0;
}
