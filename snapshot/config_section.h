/* The "configuration" section, first in every snapshot: what the VM was
 * (RAM, vCPUs, devices and their host resources, the CPU features the guest
 * was given), so a restore can rebuild it and refuse, before it creates
 * anything, a host that cannot run it. */
#ifndef SNAPSHOT_CONFIG_SECTION_H
#define SNAPSHOT_CONFIG_SECTION_H

#include "vmm/vm.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_stream;

#define SNAP_CONFIG_VERSION 1
#define SNAP_CONFIG_PATH_MAX 4096

struct snap_config_disk {
	char path[SNAP_CONFIG_PATH_MAX];
	bool ro;
};

struct snap_config_net {
	char tap[16];
	uint8_t mac[6];
};

struct snap_config {
	uint64_t mem_size;
	uint32_t ncpus;
	uint32_t ndisks;
	struct snap_config_disk disks[VM_MAX_DISKS];
	uint32_t nnets;
	struct snap_config_net nets[VM_MAX_NETS];
	bool rng;
	char vendor[13];               /* CPUID 0: "GenuineIntel" */
	uint32_t cpuid1_eax;           /* family, model, stepping */
	uint32_t features[5];          /* CPUID 1 ECX, EDX; 7.0 EBX, ECX, EDX */
	char kernel[SNAP_CONFIG_PATH_MAX];
	char cmdline[SNAP_CONFIG_PATH_MAX];
};

/* Write the section data of vm's configuration. */
int snap_config_save(struct snap_stream *s, const struct vm *vm);
/* Decode and validate; -EPROTO with err on nonsense (counts over the
 * limits, unterminated strings, zero RAM or vCPUs). */
int snap_config_load(struct snap_stream *s, struct snap_config *c, char *err, size_t errlen);
/* Can this host run it? vendor equal, every CPU feature the guest was given
 * supported by this host's KVM, RAM and vCPUs within limits. */
int snap_config_check_host(const struct snap_config *c, int kvm_fd, char *err, size_t errlen);
/* The vm_config to rebuild the VM (strings point into c). */
void snap_config_to_vm(const struct snap_config *c, struct vm_config *cfg);

#endif
