/* A full checkpoint: pause, write every section, resume.
 *
 * Order: vCPUs parked first (vm_pause), then each virtio device quiesced
 * (in-flight block requests completed, net RX stopped), so nothing changes
 * guest RAM or device state while it is written. The file is only given its
 * name by the caller's commit, after this returns success: a failure at any
 * step leaves no snapshot and the guest running as before. */
#include "snapshot/checkpoint.h"
#include "devices/i8042.h"
#include "devices/serial.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "snapshot/cpu_state.h"
#include "snapshot/format.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"
#include "snapshot/vm_state.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#define VMM_WRITER "vmm 0.1.0"

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int snapshot_build_registry(struct snap_registry *reg, struct vm *vm)
{
	int err;

	snap_registry_init(reg);
	err = vm_state_register(reg, vm);
	if (!err)
		err = cpu_state_register(reg, vm);
	if (!err)
		err = serial_register_state(reg, vm->serial, 0);
	if (!err)
		err = i8042_register_state(reg, vm->i8042);
	for (unsigned int i = 0; !err && i < vm->cfg.ndisks; i++)
		err = virtio_blk_register_state(reg, vm->disks[i], i);
	for (unsigned int i = 0; !err && i < vm->cfg.nnets; i++)
		err = virtio_net_register_state(reg, vm->nets[i], i);
	if (!err && vm->rng)
		err = virtio_rng_register_state(reg, vm->rng);
	return err;
}

/* Every virtio transport of vm, for pause and resume. */
static unsigned int vm_transports(struct vm *vm, struct virtio_mmio **t)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < vm->cfg.ndisks; i++)
		t[n++] = virtio_blk_transport(vm->disks[i]);
	for (unsigned int i = 0; i < vm->cfg.nnets; i++)
		t[n++] = virtio_net_transport(vm->nets[i]);
	if (vm->rng)
		t[n++] = virtio_rng_transport(vm->rng);
	return n;
}

static int write_full_section(struct snap_writer *w, const char *name, uint32_t instance,
			      uint32_t version, int (*save)(void *, struct snap_stream *),
			      void *opaque, char *err, size_t errlen)
{
	uint32_t id;
	int r = snap_writer_section_begin(w, SNAP_REC_FULL, name, instance, version, &id);

	if (!r)
		r = save(opaque, snap_writer_stream(w));
	if (!r)
		r = snap_writer_record_end(w);
	if (r)
		snprintf(err, errlen, "checkpoint: section '%s' instance %u: %s", name, instance,
			 strerror(-r));
	return r;
}

static int save_config(void *opaque, struct snap_stream *s)
{
	return snap_config_save(s, opaque);
}

static int write_sections(struct vm *vm, struct snap_registry *reg, struct snap_writer *w,
			  struct checkpoint_result *res, char *err, size_t errlen)
{
	int r = write_full_section(w, "configuration", 0, SNAP_CONFIG_VERSION, save_config, vm,
				   err, errlen);

	if (r)
		return r;
	r = ram_save(w, &vm->mem, &res->ram);
	if (r) {
		snprintf(err, errlen, "checkpoint: guest RAM: %s", strerror(-r));
		return r;
	}
	for (unsigned int i = 0; i < reg->n; i++) {
		const struct snap_section *sec = &reg->sections[i];

		r = write_full_section(w, sec->name, sec->instance, sec->ops->version,
				       sec->ops->save, sec->opaque, err, errlen);
		if (r)
			return r;
	}
	r = snap_writer_eof(w);
	if (r)
		snprintf(err, errlen, "checkpoint: finishing the snapshot: %s", strerror(-r));
	return r;
}

int checkpoint_full(struct vm *vm, struct snap_stream *s, bool page_aligned, bool leave_paused,
		    struct checkpoint_result *res, char *err, size_t errlen)
{
	struct virtio_mmio *t[VM_MAX_VIRTIO];
	struct snap_registry reg;
	struct snap_writer w;
	struct timespec wall;
	unsigned int nt = vm_transports(vm, t);
	bool was_paused = vm_is_paused(vm);
	double t0 = now_s(), paused_at;
	int r;

	memset(res, 0, sizeof(*res));
	r = snapshot_build_registry(&reg, vm);
	if (r) {
		snprintf(err, errlen, "checkpoint: registering sections: %s", strerror(-r));
		return r;
	}
	r = snap_registry_check_savable(&reg, err, errlen);
	if (r)
		return r;
	r = vm_pause(vm);
	if (r) {
		snprintf(err, errlen, "checkpoint: the VM is shutting down");
		return r;
	}
	paused_at = now_s();
	for (unsigned int i = 0; i < nt; i++)
		virtio_mmio_pause(t[i]);

	clock_gettime(CLOCK_REALTIME, &wall);
	r = snap_writer_begin(s, page_aligned ? SNAP_FLAG_PAGE_ALIGNED : 0,
			      (uint64_t)wall.tv_sec * 1000000000ULL + (uint64_t)wall.tv_nsec,
			      VMM_WRITER, &w);
	if (r)
		snprintf(err, errlen, "checkpoint: writing the header: %s", strerror(-r));
	else
		r = write_sections(vm, &reg, &w, res, err, errlen);
	if (!r) {
		r = snap_stream_flush(s);
		if (r)
			snprintf(err, errlen, "checkpoint: writing: %s", strerror(-r));
	}
	snap_writer_release(&w);

	for (unsigned int i = 0; i < nt; i++)
		virtio_mmio_resume(t[i]);
	if (!leave_paused && !was_paused)
		vm_resume(vm);
	res->pause_ms = (now_s() - paused_at) * 1000;
	res->bytes = snap_stream_offset(s);
	res->secs = now_s() - t0;
	return r;
}
