/* Each section is the KVM structure(s) as bytes (stable kernel ABI), with
 * the length checked on load; see cpu_state.c for the reasoning. */
#include "snapshot/vm_state.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"
#include "vmm/vm.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#define VM_STATE_VERSION 1

static int vm_state_irqchip_save(void *opaque, struct snap_stream *s)
{
	struct vm *vm = opaque;

	for (uint32_t id = KVM_IRQCHIP_PIC_MASTER; id <= KVM_IRQCHIP_IOAPIC; id++) {
		struct kvm_irqchip chip = { .chip_id = id };

		if (ioctl(vm->vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return -errno;
		snap_put_bytes(s, &chip, sizeof(chip));
	}
	return 0;
}

static int vm_state_irqchip_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct vm *vm = opaque;
	struct kvm_irqchip chips[3];

	snap_get_bytes(s, chips, sizeof(chips));
	if (snap_stream_error(s))
		return snap_stream_error(s);
	for (uint32_t i = 0; i < 3; i++) {
		if (chips[i].chip_id != i)
			return -EPROTO;
		if (ioctl(vm->vm_fd, KVM_SET_IRQCHIP, &chips[i]) < 0)
			return -errno;
	}
	return 0;
}

static int vm_state_pit_save(void *opaque, struct snap_stream *s)
{
	struct vm *vm = opaque;
	struct kvm_pit_state2 pit;

	if (ioctl(vm->vm_fd, KVM_GET_PIT2, &pit) < 0)
		return -errno;
	snap_put_bytes(s, &pit, sizeof(pit));
	return 0;
}

static int vm_state_pit_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct vm *vm = opaque;
	struct kvm_pit_state2 pit;

	snap_get_bytes(s, &pit, sizeof(pit));
	if (snap_stream_error(s))
		return snap_stream_error(s);
	return ioctl(vm->vm_fd, KVM_SET_PIT2, &pit) < 0 ? -errno : 0;
}

static int vm_state_clock_save(void *opaque, struct snap_stream *s)
{
	struct vm *vm = opaque;
	struct kvm_clock_data clock;

	memset(&clock, 0, sizeof(clock));
	if (ioctl(vm->vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return -errno;
	snap_put_le64(s, clock.clock);
	return 0;
}

static int vm_state_clock_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	struct vm *vm = opaque;
	struct kvm_clock_data clock;

	memset(&clock, 0, sizeof(clock));
	clock.clock = snap_get_le64(s);
	if (snap_stream_error(s))
		return snap_stream_error(s);
	return ioctl(vm->vm_fd, KVM_SET_CLOCK, &clock) < 0 ? -errno : 0;
}

static const struct snap_section_ops irqchip_ops = {
	.name = "irqchip", .version = VM_STATE_VERSION, .min_version = VM_STATE_VERSION,
	.save = vm_state_irqchip_save, .load = vm_state_irqchip_load,
};
static const struct snap_section_ops pit_ops = {
	.name = "pit", .version = VM_STATE_VERSION, .min_version = VM_STATE_VERSION,
	.save = vm_state_pit_save, .load = vm_state_pit_load,
};
static const struct snap_section_ops clock_ops = {
	.name = "clock", .version = VM_STATE_VERSION, .min_version = VM_STATE_VERSION,
	.save = vm_state_clock_save, .load = vm_state_clock_load,
};

int vm_state_register(struct snap_registry *reg, struct vm *vm)
{
	int err = 0;

	if (vm->irqchip)
		err = snap_registry_add(reg, &irqchip_ops, 0, vm);
	if (!err && vm->has_pit)
		err = snap_registry_add(reg, &pit_ops, 0, vm);
	if (!err)
		err = snap_registry_add(reg, &clock_ops, 0, vm);
	return err;
}
