/* vCPU state as snapshot sections: one "cpu" section per vCPU (instance =
 * index) holding everything KVM keeps for it. */
#ifndef SNAPSHOT_CPU_STATE_H
#define SNAPSHOT_CPU_STATE_H

struct snap_registry;
struct vm;

#define CPU_STATE_VERSION 1

/* Register a "cpu" section for every vCPU of vm. Saving needs the vCPUs
 * paused (outside KVM_RUN); loading happens before they first run. */
int cpu_state_register(struct snap_registry *reg, struct vm *vm);

#endif
