/* Encoding (version 1), little-endian:
 *   u64 mem_size, u32 ncpus,
 *   u32 ndisks, per disk: str path, u8 ro,
 *   u32 nnets, per net: str tap, u8 mac[6],
 *   u8 rng,
 *   u8 vendor[12], u32 cpuid1_eax, u32 features[5],
 *   str kernel, str cmdline
 * where str = u16 length, bytes (no NUL). */
#include "snapshot/config_section.h"
#include "snapshot/stream.h"
#include "vmm/cpuid.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void put_str(struct snap_stream *s, const char *str)
{
	size_t len = str ? strlen(str) : 0;

	if (len >= SNAP_CONFIG_PATH_MAX) {
		snap_stream_set_error(s, -ENAMETOOLONG);
		return;
	}
	snap_put_le16(s, (uint16_t)len);
	snap_put_bytes(s, str, len);
}

static bool get_str(struct snap_stream *s, char *out, size_t size)
{
	uint16_t len = snap_get_le16(s);

	if (snap_stream_error(s) || len >= size)
		return false;
	snap_get_bytes(s, out, len);
	out[len] = '\0';
	return !snap_stream_error(s) && strlen(out) == len;   /* no NUL inside */
}

static const struct kvm_cpuid_entry2 *find_leaf(const struct kvm_cpuid2 *c, uint32_t fn)
{
	for (uint32_t i = 0; c && i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == 0)
			return &c->entries[i];
	return NULL;
}

static void cpu_summary(const struct kvm_cpuid2 *c, char vendor[13], uint32_t *eax1,
			uint32_t features[5])
{
	const struct kvm_cpuid_entry2 *l0 = find_leaf(c, 0), *l1 = find_leaf(c, 1),
				      *l7 = find_leaf(c, 7);

	memset(vendor, 0, 13);
	if (l0) {
		memcpy(vendor, &l0->ebx, 4);
		memcpy(vendor + 4, &l0->edx, 4);
		memcpy(vendor + 8, &l0->ecx, 4);
	}
	*eax1 = l1 ? l1->eax : 0;
	features[0] = l1 ? l1->ecx : 0;
	features[1] = l1 ? l1->edx : 0;
	features[2] = l7 ? l7->ebx : 0;
	features[3] = l7 ? l7->ecx : 0;
	features[4] = l7 ? l7->edx : 0;
}

int snap_config_save(struct snap_stream *s, const struct vm *vm)
{
	const struct vm_config *cfg = &vm->cfg;
	char vendor[13];
	uint32_t eax1, features[5];

	snap_put_le64(s, vm->mem.size);
	snap_put_le32(s, vm->ncpus);
	snap_put_le32(s, cfg->ndisks);
	for (unsigned int i = 0; i < cfg->ndisks; i++) {
		put_str(s, cfg->disks[i].path);
		snap_put_u8(s, cfg->disks[i].ro);
	}
	snap_put_le32(s, cfg->nnets);
	for (unsigned int i = 0; i < cfg->nnets; i++) {
		put_str(s, cfg->nets[i].tap);
		snap_put_bytes(s, cfg->nets[i].mac, 6);
	}
	snap_put_u8(s, cfg->rng);
	cpu_summary(vm->cpuid, vendor, &eax1, features);
	snap_put_bytes(s, vendor, 12);
	snap_put_le32(s, eax1);
	for (int i = 0; i < 5; i++)
		snap_put_le32(s, features[i]);
	put_str(s, cfg->kernel);
	put_str(s, vm->cmdline ? vm->cmdline : cfg->cmdline);
	return snap_stream_error(s);
}

static int bad(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "configuration section: %s", what);
	return -EPROTO;
}

int snap_config_load(struct snap_stream *s, struct snap_config *c, char *err, size_t errlen)
{
	memset(c, 0, sizeof(*c));
	c->mem_size = snap_get_le64(s);
	c->ncpus = snap_get_le32(s);
	c->ndisks = snap_get_le32(s);
	if (snap_stream_error(s))
		return snap_stream_error(s);
	if (!c->mem_size || c->mem_size & 0xfff || !c->ncpus || c->ncpus > 255)
		return bad(err, errlen, "invalid RAM size or vCPU count");
	if (c->ndisks > VM_MAX_DISKS)
		return bad(err, errlen, "too many disks");
	for (unsigned int i = 0; i < c->ndisks; i++) {
		if (!get_str(s, c->disks[i].path, sizeof(c->disks[i].path)))
			return snap_stream_error(s) ? snap_stream_error(s) : bad(err, errlen, "bad disk path");
		c->disks[i].ro = snap_get_u8(s) != 0;
	}
	c->nnets = snap_get_le32(s);
	if (snap_stream_error(s))
		return snap_stream_error(s);
	if (c->nnets > VM_MAX_NETS)
		return bad(err, errlen, "too many network devices");
	for (unsigned int i = 0; i < c->nnets; i++) {
		if (!get_str(s, c->nets[i].tap, sizeof(c->nets[i].tap)))
			return snap_stream_error(s) ? snap_stream_error(s) : bad(err, errlen, "bad tap name");
		snap_get_bytes(s, c->nets[i].mac, 6);
	}
	c->rng = snap_get_u8(s) != 0;
	snap_get_bytes(s, c->vendor, 12);
	c->cpuid1_eax = snap_get_le32(s);
	for (int i = 0; i < 5; i++)
		c->features[i] = snap_get_le32(s);
	if (!get_str(s, c->kernel, sizeof(c->kernel)) || !get_str(s, c->cmdline, sizeof(c->cmdline)))
		return snap_stream_error(s) ? snap_stream_error(s) : bad(err, errlen, "bad string");
	return snap_stream_error(s);
}

int snap_config_check_host(const struct snap_config *c, int kvm_fd, char *err, size_t errlen)
{
	static const char *const names[5] = { "1.ECX", "1.EDX", "7.EBX", "7.ECX", "7.EDX" };
	/* Bits vmm sets itself for every guest (hypervisor, HTT) or that KVM
	 * manages (OSXSAVE, the APIC bit follows the APIC base MSR). */
	static const uint32_t ours[5] = { (1u << 31) | (1u << 27), (1u << 28) | (1u << 9), 0, 0, 0 };
	struct kvm_cpuid2 *host = NULL;
	char vendor[13];
	uint32_t eax1, features[5];
	int own_fd = kvm_fd < 0 ? open("/dev/kvm", O_RDWR | O_CLOEXEC) : -1;
	int r = kvm_fd < 0 && own_fd < 0 ? -errno :
		cpuid_get_supported(kvm_fd < 0 ? own_fd : kvm_fd, &host);

	if (own_fd >= 0)
		close(own_fd);
	if (r) {
		snprintf(err, errlen, "KVM_GET_SUPPORTED_CPUID: %s", strerror(-r));
		return r;
	}
	cpu_summary(host, vendor, &eax1, features);
	free(host);
	if (strcmp(vendor, c->vendor)) {
		snprintf(err, errlen, "the snapshot was taken on a %s CPU; this host is %s",
			 c->vendor, vendor);
		return -EPROTO;
	}
	for (int i = 0; i < 5; i++) {
		uint32_t missing = c->features[i] & ~features[i] & ~ours[i];

		if (missing) {
			snprintf(err, errlen,
				 "the guest was given CPU features this host's KVM lacks (CPUID %s bits 0x%08x)",
				 names[i], missing);
			return -EPROTO;
		}
	}
	return 0;
}

void snap_config_to_vm(const struct snap_config *c, struct vm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->kernel = c->kernel;
	cfg->cmdline = c->cmdline;
	cfg->mem_size = c->mem_size;
	cfg->ncpus = c->ncpus;
	cfg->console = VM_CONSOLE_STDIO;
	cfg->ndisks = c->ndisks;
	for (unsigned int i = 0; i < c->ndisks; i++)
		cfg->disks[i] = (struct vm_disk){ .path = c->disks[i].path, .ro = c->disks[i].ro };
	cfg->nnets = c->nnets;
	for (unsigned int i = 0; i < c->nnets; i++) {
		cfg->nets[i].tap = c->nets[i].tap;
		cfg->nets[i].has_mac = true;
		memcpy(cfg->nets[i].mac, c->nets[i].mac, 6);
	}
	cfg->rng = c->rng;
}
