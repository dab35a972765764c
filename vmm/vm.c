/* Creating a VM, and the run-control protocol with its vCPU threads.
 *
 * Pause: the requester sets pause_req under the lock, kicks every vCPU and
 * waits until nparked + nexited == ncpus. A vCPU thread checks the flags
 * after each return from KVM_RUN (vm_vcpu_should_park) and parks on the
 * condition variable until pause_req clears or stop_req is set. Stop sets
 * stop_req, kicks, and joins. */
#include "vmm/vm.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "vmm/cpuid.h"
#include "vmm/irq.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#define VM_COM1_PORT 0x3f8
#define VM_COM1_IRQ  4
#define VM_TSS_ADDR  0xfffbd000UL

static int vm_check_extension(struct vm *vm, long cap)
{
	int r = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, cap);

	return r < 0 ? 0 : r;
}

static int vm_open_kvm(struct vm *vm)
{
	int version, err;

	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		err = -errno;
		log_err("cannot open /dev/kvm: %s (%s)", strerror(-err),
			err == -ENOENT ? "is KVM enabled and its module loaded?" :
			err == -EACCES ? "is this user in the kvm group?" : "KVM unusable");
		return err;
	}
	version = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (version != KVM_API_VERSION) {
		log_err("/dev/kvm speaks API version %d; vmm needs %d", version, KVM_API_VERSION);
		return -ENOTSUP;
	}
	return 0;
}

static int vm_check_limits(struct vm *vm, const struct vm_config *cfg)
{
	int max_vcpus = vm_check_extension(vm, KVM_CAP_MAX_VCPUS);
	struct sysinfo si;

	if (max_vcpus <= 0)
		max_vcpus = vm_check_extension(vm, KVM_CAP_NR_VCPUS);
	if (max_vcpus <= 0)
		max_vcpus = 4;  /* KVM's documented default */
	if (max_vcpus > 255)
		max_vcpus = 255;  /* xAPIC ids, as the boot contract gives them */
	if (cfg->ncpus == 0 || cfg->ncpus > (unsigned int)max_vcpus) {
		log_err("--cpus %u is out of range: this host's KVM allows 1 to %d",
			cfg->ncpus, max_vcpus);
		return -EINVAL;
	}
	if (sysinfo(&si) == 0) {
		uint64_t host = (uint64_t)si.totalram * si.mem_unit;

		if (cfg->mem_size > host) {
			log_err("--mem %llu MiB is more than this host's %llu MiB of RAM",
				(unsigned long long)(cfg->mem_size >> 20),
				(unsigned long long)(host >> 20));
			return -ENOMEM;
		}
	}
	return 0;
}

static int vm_add_memslots(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->mem.nregions; i++) {
		const struct guest_mem_region *r = &vm->mem.regions[i];
		struct kvm_userspace_memory_region slot = {
			.slot = i,
			.guest_phys_addr = r->gpa,
			.memory_size = r->size,
			.userspace_addr = (uint64_t)(uintptr_t)(vm->mem.host + r->offset),
		};

		if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &slot) < 0) {
			int err = -errno;

			log_err("KVM_SET_USER_MEMORY_REGION slot %u (0x%llx, %llu MiB): %s", i,
				(unsigned long long)r->gpa, (unsigned long long)(r->size >> 20),
				strerror(-err));
			return err;
		}
	}
	return 0;
}

/* Before the irqchip: on PVM hosts the first memslot of a VM that already
 * has an in-kernel irqchip waits 5-11 ms in KVM (an SRCU grace period);
 * registered first, it takes ~0.2 ms. See docs/pvm-host.md. */
static int vm_setup_memory(struct vm *vm)
{
	int err = guest_mem_create(&vm->mem, vm->cfg.mem_size);

	if (err) {
		log_err("cannot allocate %llu MiB of guest RAM: %s",
			(unsigned long long)(vm->cfg.mem_size >> 20), strerror(-err));
		return err;
	}
	return vm_add_memslots(vm);
}

static void vm_set_irq(void *opaque, unsigned int gsi, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (vm->irqchip && ioctl(vm->vm_fd, KVM_IRQ_LINE, &irq) < 0 &&
	    !__atomic_exchange_n(&vm->irq_error_logged, true, __ATOMIC_RELAXED))
		log_warn("KVM_IRQ_LINE %u: %s: guest interrupts may be lost", gsi, strerror(errno));
}

static void vm_guest_reset(void *opaque)
{
	vm_request_exit(opaque, VM_EXIT_OK, "guest reset");
}

static int vm_setup_irqchip(struct vm *vm)
{
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };

	/* Needed on Intel VMX before the first KVM_RUN; harmless elsewhere. */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, VM_TSS_ADDR) < 0)
		log_debug("KVM_SET_TSS_ADDR: %s", strerror(errno));
	if (vm_check_extension(vm, KVM_CAP_IRQCHIP)) {
		if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
			log_err("KVM_CREATE_IRQCHIP: %s", strerror(errno));
			return -errno;
		}
		vm->irqchip = true;
	} else {
		log_warn("this KVM has no in-kernel irqchip: guest interrupts will not be delivered");
	}
	if (vm->irqchip && vm_check_extension(vm, KVM_CAP_PIT2)) {
		if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0)
			log_warn("KVM_CREATE_PIT2: %s: the guest has no PIT", strerror(errno));
		else
			vm->has_pit = true;
	}
	return 0;
}

/* The next virtio-mmio slot: its window, its IRQ, and its entry on the
 * kernel command line (how guests without ACPI find it). */
static int vm_virtio_slot(struct vm *vm, struct virtio_env *env, size_t *cmdlen)
{
	unsigned int i = vm->nvirtio++;
	char entry[64];
	size_t n;

	*env = (struct virtio_env){
		.mmio = &vm->mmio, .mem = &vm->mem, .vm_fd = vm->vm_fd,
		.base = LAYOUT_VIRTIO_BASE + (uint64_t)i * VIRTIO_MMIO_SIZE,
		.irq = { .set = vm_set_irq, .opaque = vm, .gsi = VM_VIRTIO_IRQ_BASE + i },
	};
	n = (size_t)snprintf(entry, sizeof(entry), "%svirtio_mmio.device=4K@0x%llx:%u",
			     *cmdlen ? " " : "", (unsigned long long)env->base, env->irq.gsi);
	memcpy(vm->cmdline + *cmdlen, entry, n + 1);
	*cmdlen += n;
	return 0;
}

static int vm_setup_virtio(struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	size_t cmdlen = strlen(cfg->cmdline ? cfg->cmdline : "");
	struct virtio_env env;
	char name[32];
	int err = 0;

	vm->cmdline = malloc(cmdlen + 1 + VM_MAX_VIRTIO * 64);
	if (!vm->cmdline)
		return -ENOMEM;
	memcpy(vm->cmdline, cfg->cmdline ? cfg->cmdline : "", cmdlen + 1);
	for (unsigned int i = 0; !err && i < cfg->ndisks; i++) {
		vm_virtio_slot(vm, &env, &cmdlen);
		snprintf(name, sizeof(name), "virtio-blk%u", i);
		err = virtio_blk_create(&env, name, cfg->disks[i].path, cfg->disks[i].ro,
					&vm->disks[i]);
	}
	for (unsigned int i = 0; !err && i < cfg->nnets; i++) {
		struct vm_net *net = &vm->cfg.nets[i];

		/* Pick the MAC here, so the configuration (and a snapshot of it)
		 * holds the address the guest sees. */
		if (!net->has_mac) {
			net->mac[0] = 0x52;
			net->mac[1] = 0x54;
			net->mac[2] = 0x00;
			if (getrandom(net->mac + 3, 3, 0) != 3)
				net->mac[5] = (uint8_t)(getpid() + i);
			net->has_mac = true;
		}
		vm_virtio_slot(vm, &env, &cmdlen);
		snprintf(name, sizeof(name), "virtio-net%u", i);
		err = virtio_net_create(&env, name, net->tap, net->mac, &vm->nets[i]);
	}
	if (!err && cfg->rng) {
		vm_virtio_slot(vm, &env, &cmdlen);
		err = virtio_rng_create(&env, "virtio-rng", &vm->rng);
	}
	return err;
}

static int vm_setup_devices(struct vm *vm)
{
	struct irq_line com1 = { .set = vm_set_irq, .opaque = vm, .gsi = VM_COM1_IRQ };
	int err;

	err = serial_create(&vm->pio, VM_COM1_PORT, &com1, vm->console_out, &vm->serial);
	if (!err)
		err = i8042_create(&vm->pio, vm_guest_reset, vm, &vm->i8042);
	if (err) {
		log_err("cannot create the legacy devices: %s", strerror(-err));
		return err;
	}
	return vm_setup_virtio(vm);
}

static int vm_setup_vcpus(struct vm *vm)
{
	int size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	int err;

	if (size < (int)sizeof(struct kvm_run)) {
		log_err("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
		return -EINVAL;
	}
	vm->run_size = (size_t)size;
	err = cpuid_get_supported(vm->kvm_fd, &vm->cpuid);
	if (err) {
		log_err("KVM_GET_SUPPORTED_CPUID: %s", strerror(-err));
		return err;
	}
	log_debug("supported CPUID read: %u entries", vm->cpuid->nent);
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		err = vcpu_create(vm, i, &vm->vcpus[i]);
		if (err)
			return err;
		if (vm->cfg.restore)
			continue;   /* the snapshot's "cpu" sections set everything */
		err = vcpu_set_boot_state(&vm->vcpus[i], vm->boot.entry, vm->boot.zero_page,
					  vm->boot.start_all_vcpus);
		if (err) {
			log_err("vCPU %u: setting the boot state: %s", i, strerror(-err));
			return err;
		}
	}
	return 0;
}

int vm_create(const struct vm_config *cfg, int console_out, struct vm **out)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	int err;

	if (!vm)
		return -ENOMEM;
	vm->cfg = *cfg;
	vm->kvm_fd = vm->vm_fd = vm->exit_efd = -1;
	vm->mem.memfd = -1;
	vm->console_out = console_out;
	pthread_mutex_init(&vm->lock, NULL);
	pthread_cond_init(&vm->cond, NULL);
	bus_init(&vm->pio, "pio");
	bus_init(&vm->mmio, "mmio");
	*out = vm;

	vm->exit_efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->exit_efd < 0)
		return -errno;
	err = vm_open_kvm(vm);
	if (err)
		return err;
	err = vm_check_limits(vm, cfg);
	if (err)
		return err;
	vm->vcpus = calloc(cfg->ncpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return -ENOMEM;
	vm->ncpus = cfg->ncpus;  /* only now: every loop over vcpus trusts ncpus */
	for (unsigned int i = 0; i < cfg->ncpus; i++)
		vm->vcpus[i].fd = -1;
	do
		vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	while (vm->vm_fd < 0 && errno == EINTR);
	if (vm->vm_fd < 0) {
		err = -errno;
		log_err("KVM_CREATE_VM: %s", strerror(-err));
		return err;
	}
	log_debug("VM created");
	err = vm_setup_memory(vm);
	if (err)
		return err;
	log_debug("guest RAM registered: %llu MiB", (unsigned long long)(cfg->mem_size >> 20));
	err = vm_setup_irqchip(vm);
	if (err)
		return err;
	log_debug("irqchip and PIT created");
	/* Devices first: they add themselves to the kernel command line. */
	err = vm_setup_devices(vm);
	if (err)
		return err;
	if (!cfg->restore) {
		err = boot_load_kernel(&vm->mem, cfg->kernel, vm->cmdline, &vm->boot);
		if (err)
			return err;
		log_debug("kernel loaded: %s, entry 0x%llx", vm->boot.format,
			  (unsigned long long)vm->boot.entry);
	} else {
		vm->boot.format = "snapshot";
	}
	err = vm_setup_vcpus(vm);
	if (!err)
		log_debug("%u vCPU(s) created", vm->ncpus);
	return err;
}

int vm_start(struct vm *vm)
{
	vcpu_install_kick_signal();
	vm->started = true;
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		int err = vcpu_start(&vm->vcpus[i]);

		if (err) {
			log_err("cannot start the thread of vCPU %u: %s", i, strerror(-err));
			return err;
		}
	}
	return 0;
}

static void vm_kick_all(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->ncpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

bool vm_vcpu_should_park(struct vm *vm)
{
	return __atomic_load_n(&vm->pause_req, __ATOMIC_ACQUIRE) ||
	       __atomic_load_n(&vm->stop_req, __ATOMIC_ACQUIRE);
}

void vm_vcpu_park(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->stop_req) {
		pthread_mutex_unlock(&vm->lock);
		return;
	}
	vm->nparked++;
	pthread_cond_broadcast(&vm->cond);
	while (vm->pause_req && !vm->stop_req)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->nparked--;
	pthread_mutex_unlock(&vm->lock);
}

void vm_vcpu_exited(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	vm->nexited++;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
}

int vm_pause(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	if (vm->stop_req) {
		pthread_mutex_unlock(&vm->lock);
		return -ESHUTDOWN;
	}
	__atomic_store_n(&vm->pause_req, true, __ATOMIC_RELEASE);
	vm_kick_all(vm);
	while (vm->nparked + vm->nexited < vm->ncpus)
		pthread_cond_wait(&vm->cond, &vm->lock);
	vm->paused = true;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

void vm_pause_before_start(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	__atomic_store_n(&vm->pause_req, true, __ATOMIC_RELEASE);
	vm->paused = true;
	pthread_mutex_unlock(&vm->lock);
}

int vm_resume(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	/* Tell guests using kvmclock that they were stopped, so their
	 * watchdogs do not fire on the gap (EINVAL if the guest has none). */
	if (vm->paused)
		for (unsigned int i = 0; i < vm->ncpus; i++)
			ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
	__atomic_store_n(&vm->pause_req, false, __ATOMIC_RELEASE);
	vm->paused = false;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

bool vm_is_paused(struct vm *vm)
{
	bool paused;

	pthread_mutex_lock(&vm->lock);
	paused = vm->paused;
	pthread_mutex_unlock(&vm->lock);
	return paused;
}

void vm_request_exit(struct vm *vm, int code, const char *fmt, ...)
{
	uint64_t one = 1;
	va_list ap;

	pthread_mutex_lock(&vm->lock);
	if (!vm->exit_set) {
		vm->exit_set = true;
		vm->exit_code = code;
		va_start(ap, fmt);
		vsnprintf(vm->exit_msg, sizeof(vm->exit_msg), fmt, ap);
		va_end(ap);
	}
	__atomic_store_n(&vm->stop_req, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	vm_kick_all(vm);
	if (write(vm->exit_efd, &one, sizeof(one)) < 0) {
		/* The counter cannot overflow with one write per request. */
	}
}

void vm_stop(struct vm *vm)
{
	pthread_mutex_lock(&vm->lock);
	__atomic_store_n(&vm->stop_req, true, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	vm_kick_all(vm);
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		if (vm->vcpus[i].thread_started) {
			pthread_join(vm->vcpus[i].thread, NULL);
			vm->vcpus[i].thread_started = false;
		}
	}
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	vm_stop(vm);
	for (unsigned int i = 0; vm->vcpus && i < vm->ncpus; i++)
		if (vm->vcpus[i].fd >= 0)
			vcpu_destroy(&vm->vcpus[i]);
	for (unsigned int i = 0; i < VM_MAX_DISKS; i++)
		virtio_blk_destroy(vm->disks[i]);
	for (unsigned int i = 0; i < VM_MAX_NETS; i++)
		virtio_net_destroy(vm->nets[i]);
	virtio_rng_destroy(vm->rng);
	free(vm->cmdline);
	serial_destroy(vm->serial);
	i8042_destroy(vm->i8042);
	guest_mem_destroy(&vm->mem);
	free(vm->cpuid);
	free(vm->vcpus);
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	if (vm->kvm_fd >= 0)
		close(vm->kvm_fd);
	if (vm->exit_efd >= 0)
		close(vm->exit_efd);
	pthread_cond_destroy(&vm->cond);
	pthread_mutex_destroy(&vm->lock);
	free(vm);
}
