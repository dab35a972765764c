/* A VM: KVM handles, guest RAM, buses, devices, vCPU threads, and the run
 * control (pause, resume, stop) every other part uses. Everything hangs off
 * struct vm; two VMs in one process work. */
#ifndef VMM_VM_H
#define VMM_VM_H

#include "vmm/boot/boot.h"
#include "vmm/bus.h"
#include "vmm/memory.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

enum vm_console { VM_CONSOLE_STDIO, VM_CONSOLE_NONE, VM_CONSOLE_FILE };

#define VM_MAX_DISKS 8
#define VM_MAX_NETS  4
#define VM_MAX_VIRTIO (VM_MAX_DISKS + VM_MAX_NETS + 1)
#define VM_VIRTIO_IRQ_BASE 5     /* GSI of the first virtio-mmio device */

struct vm_disk {
	const char *path;
	bool ro;
};

struct vm_net {
	const char *tap;
	bool has_mac;
	uint8_t mac[6];
};

struct vm_config {
	const char *kernel;
	const char *initrd;
	const char *cmdline;
	uint64_t mem_size;
	unsigned int ncpus;
	const char *api_sock;
	enum vm_console console;
	const char *console_path;
	unsigned int ndisks;
	struct vm_disk disks[VM_MAX_DISKS];
	unsigned int nnets;
	struct vm_net nets[VM_MAX_NETS];
	bool rng;
	bool restore;             /* state comes from a snapshot: no kernel load */
	bool stdin_taken;         /* stdin carries the snapshot: no console input */
};

/* vmm's exit codes (docs/cli.md). */
enum vm_exit {
	VM_EXIT_OK = 0,           /* the guest reset or powered off, or `stop` */
	VM_EXIT_ERROR = 1,        /* vmm could not set up or keep running the VM */
	VM_EXIT_USAGE = 2,        /* bad command line */
	VM_EXIT_GUEST_CRASH = 3,  /* triple fault, emulation failure, ... */
};

struct vcpu;
struct serial;
struct i8042;
struct virtio_blk;
struct virtio_net;
struct virtio_rng;

struct vm {
	struct vm_config cfg;
	int kvm_fd;
	int vm_fd;
	size_t run_size;
	struct guest_mem mem;
	struct boot_info boot;
	struct kvm_cpuid2 *cpuid;
	uint32_t tsc_khz;
	bool irqchip;
	bool has_pit;
	bool irq_error_logged;
	unsigned int ncpus;
	struct vcpu *vcpus;
	struct bus pio;
	struct bus mmio;
	struct serial *serial;
	struct i8042 *i8042;
	struct virtio_blk *disks[VM_MAX_DISKS];
	struct virtio_net *nets[VM_MAX_NETS];
	struct virtio_rng *rng;
	unsigned int nvirtio;     /* virtio-mmio slots used */
	char *cmdline;            /* --cmdline plus the virtio_mmio.device= entries */
	int console_out;          /* fd the guest console writes to, or -1 */

	/* Run control; see vm.c for the protocol with the vCPU threads. */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool pause_req;
	bool stop_req;
	bool paused;
	unsigned int nparked;
	unsigned int nexited;
	bool started;

	/* Why and how vmm ends: the first request wins. */
	int exit_efd;             /* eventfd, readable once an exit is requested */
	bool exit_set;
	int exit_code;
	char exit_msg[256];
};

int vm_create(const struct vm_config *cfg, int console_out, struct vm **out);
int vm_start(struct vm *vm);
/* Park every vCPU outside KVM_RUN; returns once all are parked. Idempotent. */
int vm_pause(struct vm *vm);
int vm_resume(struct vm *vm);
/* Before vm_start: the vCPUs park before their first instruction (a
 * restored guest started with --paused). */
void vm_pause_before_start(struct vm *vm);
bool vm_is_paused(struct vm *vm);
/* Ask vmm to end with code; the first request wins. Callable from any thread. */
void vm_request_exit(struct vm *vm, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Stop and join all vCPU threads. */
void vm_stop(struct vm *vm);
void vm_destroy(struct vm *vm);

/* Internal to the vCPU threads. */
bool vm_vcpu_should_park(struct vm *vm);
void vm_vcpu_park(struct vm *vm);
void vm_vcpu_exited(struct vm *vm);

#endif
