/* Running a VM in this process until it ends: shared by `vmm run` and
 * `vmm restore` (vmm/main.c). */
#ifndef VMM_SERVE_H
#define VMM_SERVE_H

#include <stdbool.h>

struct snap_reader;
struct vm_config;

/* restore: NULL to boot cfg->kernel; else the snapshot being read, its
 * configuration section already consumed (cfg built from it). paused: the
 * restored vCPUs wait for `vmm resume`. Returns the exit status. */
int vmm_serve(struct vm_config *cfg, struct snap_reader *restore, bool paused);

#endif
