/* The VM's in-kernel devices as snapshot sections: "irqchip" (PIC master,
 * PIC slave, IOAPIC), "pit" and "clock" (kvmclock). Registered before the
 * "cpu" sections, so a restore loads them first, as KVM needs. */
#ifndef SNAPSHOT_VM_STATE_H
#define SNAPSHOT_VM_STATE_H

struct snap_registry;
struct vm;

int vm_state_register(struct snap_registry *reg, struct vm *vm);

#endif
