/* A vCPU's state: KVM's own structures, each a tagged blob
 * {u16 tag, u32 len, bytes} (docs/snapshot-format.md, "Section data
 * encoding"), ended by tag 0. The KVM structures are stable kernel ABI, so
 * their bytes are the encoding. Loading first collects and checks every
 * blob, then applies them in the order KVM needs (CPUID, registers, XSAVE,
 * XCRs, segments, MSRs, MP state, LAPIC, events, debug registers), so a
 * damaged section changes nothing. */
#include "snapshot/cpu_state.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"
#include "vmm/log.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

enum cpu_tag {
	CPU_T_END = 0,
	CPU_T_CPUID = 1,
	CPU_T_REGS,
	CPU_T_XSAVE,
	CPU_T_XCRS,
	CPU_T_SREGS,
	CPU_T_MSRS,
	CPU_T_MP_STATE,
	CPU_T_LAPIC,
	CPU_T_EVENTS,
	CPU_T_DEBUGREGS,
	CPU_T_COUNT,
};

#define CPU_TAG_OPTIONAL 0x8000   /* a reader may skip it if it does not know it */
#define CPU_BLOB_MAX     (1u << 20)
#define CPU_MSRS_MAX     1024

struct cpu_blobs {
	void *data[CPU_T_COUNT];
	uint32_t len[CPU_T_COUNT];
};

static void cpu_put_blob(struct snap_stream *s, enum cpu_tag tag, const void *buf, size_t len)
{
	snap_put_le16(s, (uint16_t)tag);
	snap_put_le32(s, (uint32_t)len);
	snap_put_bytes(s, buf, len);
}

/* The MSRs of KVM's index list that this vCPU can read; KVM_GET_MSRS stops
 * at the first index it refuses, which is then dropped. */
static struct kvm_msrs *cpu_read_msrs(struct vcpu *vcpu)
{
	struct kvm_msr_list *list;
	struct kvm_msrs *msrs = NULL;
	uint32_t n;

	list = calloc(1, sizeof(*list) + CPU_MSRS_MAX * sizeof(uint32_t));
	if (!list)
		return NULL;
	list->nmsrs = CPU_MSRS_MAX;
	if (ioctl(vcpu->vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0)
		goto out;
	n = list->nmsrs;
	msrs = calloc(1, sizeof(*msrs) + n * sizeof(msrs->entries[0]));
	if (!msrs)
		goto out;
	for (uint32_t i = 0; i < n; i++)
		msrs->entries[i].index = list->indices[i];
	msrs->nmsrs = n;
	while (msrs->nmsrs) {
		int got = ioctl(vcpu->fd, KVM_GET_MSRS, msrs);

		if (got < 0) {
			free(msrs);
			msrs = NULL;
			break;
		}
		if ((uint32_t)got == msrs->nmsrs)
			break;
		memmove(&msrs->entries[got], &msrs->entries[got + 1],
			(msrs->nmsrs - (uint32_t)got - 1) * sizeof(msrs->entries[0]));
		msrs->nmsrs--;
	}
out:
	free(list);
	return msrs;
}

static size_t cpu_xsave_size(struct vm *vm)
{
	int size = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);

	return size > (int)sizeof(struct kvm_xsave) ? (size_t)size : sizeof(struct kvm_xsave);
}

/* GET ioctl into buf, then a blob. */
static int cpu_save_one(struct vcpu *vcpu, struct snap_stream *s, enum cpu_tag tag,
			unsigned long req, void *buf, size_t len)
{
	if (ioctl(vcpu->fd, req, buf) < 0)
		return -errno;
	cpu_put_blob(s, tag, buf, len);
	return 0;
}

static int cpu_save(void *opaque, struct snap_stream *s)
{
	struct vcpu *vcpu = opaque;
	struct vm *vm = vcpu->vm;
	size_t xsize = cpu_xsave_size(vm);
	union {
		struct kvm_regs regs;
		struct kvm_sregs sregs;
		struct kvm_xcrs xcrs;
		struct kvm_mp_state mp;
		struct kvm_lapic_state lapic;
		struct kvm_vcpu_events events;
		struct kvm_debugregs debug;
	} u;
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 1024 * sizeof(cpuid->entries[0]));
	void *xsave = calloc(1, xsize);
	struct kvm_msrs *msrs = cpu_read_msrs(vcpu);
	int err = -ENOMEM;

	if (!cpuid || !xsave || !msrs)
		goto out;
	cpuid->nent = 1024;
	if (ioctl(vcpu->fd, KVM_GET_CPUID2, cpuid) < 0) {
		err = -errno;
		goto out;
	}
	cpu_put_blob(s, CPU_T_CPUID, cpuid, sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]));
	err = cpu_save_one(vcpu, s, CPU_T_REGS, KVM_GET_REGS, &u.regs, sizeof(u.regs));
	if (!err)
		err = cpu_save_one(vcpu, s, CPU_T_XSAVE,
				   xsize > sizeof(struct kvm_xsave) ? KVM_GET_XSAVE2 : KVM_GET_XSAVE,
				   xsave, xsize);
	if (!err)
		err = cpu_save_one(vcpu, s, CPU_T_XCRS, KVM_GET_XCRS, &u.xcrs, sizeof(u.xcrs));
	if (!err)
		err = cpu_save_one(vcpu, s, CPU_T_SREGS, KVM_GET_SREGS, &u.sregs, sizeof(u.sregs));
	if (!err)
		cpu_put_blob(s, CPU_T_MSRS, msrs,
			     sizeof(*msrs) + msrs->nmsrs * sizeof(msrs->entries[0]));
	if (!err)
		err = cpu_save_one(vcpu, s, CPU_T_MP_STATE, KVM_GET_MP_STATE, &u.mp, sizeof(u.mp));
	if (!err && vm->irqchip)
		err = cpu_save_one(vcpu, s, CPU_T_LAPIC, KVM_GET_LAPIC, &u.lapic, sizeof(u.lapic));
	if (!err)
		err = cpu_save_one(vcpu, s, CPU_T_EVENTS, KVM_GET_VCPU_EVENTS, &u.events,
				   sizeof(u.events));
	if (!err)
		err = cpu_save_one(vcpu, s, CPU_T_DEBUGREGS, KVM_GET_DEBUGREGS, &u.debug,
				   sizeof(u.debug));
	snap_put_le16(s, CPU_T_END);
out:
	free(cpuid);
	free(xsave);
	free(msrs);
	return err;
}

static void cpu_blobs_free(struct cpu_blobs *b)
{
	for (int i = 0; i < CPU_T_COUNT; i++)
		free(b->data[i]);
}

/* Read every blob; check each one's length against what it must be. */
static int cpu_read_blobs(struct vcpu *vcpu, struct snap_stream *s, struct cpu_blobs *b)
{
	static const uint32_t fixed[CPU_T_COUNT] = {
		[CPU_T_REGS] = sizeof(struct kvm_regs),
		[CPU_T_XCRS] = sizeof(struct kvm_xcrs),
		[CPU_T_SREGS] = sizeof(struct kvm_sregs),
		[CPU_T_MP_STATE] = sizeof(struct kvm_mp_state),
		[CPU_T_LAPIC] = sizeof(struct kvm_lapic_state),
		[CPU_T_EVENTS] = sizeof(struct kvm_vcpu_events),
		[CPU_T_DEBUGREGS] = sizeof(struct kvm_debugregs),
	};

	for (;;) {
		uint16_t tag = snap_get_le16(s);
		uint32_t len;

		if (snap_stream_error(s))
			return snap_stream_error(s);
		if (tag == CPU_T_END)
			return 0;
		len = snap_get_le32(s);
		if (len > CPU_BLOB_MAX) {
			snap_stream_set_error(s, -EINVAL);
			return -EINVAL;
		}
		if (tag >= CPU_T_COUNT) {
			if (!(tag & CPU_TAG_OPTIONAL))
				return -EPROTO;   /* from a newer vmm, and required */
			snap_skip(s, len);
			continue;
		}
		if (b->data[tag])
			return -EPROTO;           /* twice */
		if (fixed[tag] && len != fixed[tag])
			return -EPROTO;
		b->data[tag] = malloc(len ? len : 1);
		if (!b->data[tag])
			return -ENOMEM;
		b->len[tag] = len;
		snap_get_bytes(s, b->data[tag], len);
	}
}

static int cpu_check_blobs(struct vcpu *vcpu, const struct cpu_blobs *b)
{
	const struct kvm_cpuid2 *cpuid = b->data[CPU_T_CPUID];
	const struct kvm_msrs *msrs = b->data[CPU_T_MSRS];

	for (int t = CPU_T_CPUID; t < CPU_T_COUNT; t++)
		if (!b->data[t] && !(t == CPU_T_LAPIC && !vcpu->vm->irqchip))
			return -EPROTO;   /* a required piece is missing */
	if (b->len[CPU_T_CPUID] < sizeof(*cpuid) || cpuid->nent > 1024 ||
	    b->len[CPU_T_CPUID] != sizeof(*cpuid) + cpuid->nent * sizeof(cpuid->entries[0]))
		return -EPROTO;
	if (b->len[CPU_T_MSRS] < sizeof(*msrs) || msrs->nmsrs > CPU_MSRS_MAX ||
	    b->len[CPU_T_MSRS] != sizeof(*msrs) + msrs->nmsrs * sizeof(msrs->entries[0]))
		return -EPROTO;
	if (b->len[CPU_T_XSAVE] < sizeof(struct kvm_xsave) ||
	    b->len[CPU_T_XSAVE] > cpu_xsave_size(vcpu->vm))
		return -EPROTO;   /* more XSAVE state than this host's KVM takes */
	return 0;
}

static int cpu_apply(struct vcpu *vcpu, struct cpu_blobs *b)
{
	static const struct { enum cpu_tag tag; unsigned long req; } order[] = {
		{ CPU_T_CPUID, KVM_SET_CPUID2 },
		{ CPU_T_REGS, KVM_SET_REGS },
		{ CPU_T_XSAVE, KVM_SET_XSAVE },
		{ CPU_T_XCRS, KVM_SET_XCRS },
		{ CPU_T_SREGS, KVM_SET_SREGS },
		{ CPU_T_MSRS, KVM_SET_MSRS },
		{ CPU_T_MP_STATE, KVM_SET_MP_STATE },
		{ CPU_T_LAPIC, KVM_SET_LAPIC },
		{ CPU_T_EVENTS, KVM_SET_VCPU_EVENTS },
		{ CPU_T_DEBUGREGS, KVM_SET_DEBUGREGS },
	};
	void *xsave = NULL;

	/* KVM_SET_XSAVE reads as much as the host's XSAVE2 size: pad a
	 * smaller snapshot buffer with zeros (an all-zero extension = init). */
	if (b->len[CPU_T_XSAVE] < cpu_xsave_size(vcpu->vm)) {
		xsave = calloc(1, cpu_xsave_size(vcpu->vm));
		if (!xsave)
			return -ENOMEM;
		memcpy(xsave, b->data[CPU_T_XSAVE], b->len[CPU_T_XSAVE]);
		free(b->data[CPU_T_XSAVE]);
		b->data[CPU_T_XSAVE] = xsave;
	}
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		int r;

		if (!b->data[order[i].tag])
			continue;
		r = ioctl(vcpu->fd, order[i].req, b->data[order[i].tag]);
		if (r < 0) {
			log_err("restore: vCPU %u: state item %d refused by KVM: %s", vcpu->index,
				order[i].tag, strerror(errno));
			return -errno;
		}
		if (order[i].tag == CPU_T_MSRS &&
		    (uint32_t)r != ((struct kvm_msrs *)b->data[CPU_T_MSRS])->nmsrs) {
			log_err("restore: vCPU %u: KVM refused MSR 0x%x", vcpu->index,
				((struct kvm_msrs *)b->data[CPU_T_MSRS])->entries[r].index);
			return -EPROTO;
		}
	}
	return 0;
}

static int cpu_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct vcpu *vcpu = opaque;
	struct cpu_blobs b = { 0 };
	int err = cpu_read_blobs(vcpu, s, &b);

	if (!err)
		err = cpu_check_blobs(vcpu, &b);
	if (!err)
		err = cpu_apply(vcpu, &b);
	cpu_blobs_free(&b);
	return err;
}

static const struct snap_section_ops cpu_ops = {
	.name = "cpu",
	.version = CPU_STATE_VERSION,
	.min_version = CPU_STATE_VERSION,
	.save = cpu_save,
	.load = cpu_load,
};

int cpu_state_register(struct snap_registry *reg, struct vm *vm)
{
	for (unsigned int i = 0; i < vm->ncpus; i++) {
		int err = snap_registry_add(reg, &cpu_ops, i, &vm->vcpus[i]);

		if (err)
			return err;
	}
	return 0;
}
