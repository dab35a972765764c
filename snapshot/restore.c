/* Restoring a full snapshot into a VM created from its configuration.
 * Records are loaded in file order; each FULL section goes to the section
 * registered under its name and instance, after the registry's version
 * checks; RAM records go to ram_load_record. Everything the registry knows
 * must have been loaded when the EOF record arrives. */
#include "snapshot/checkpoint.h"
#include "devices/virtio/blk.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/net.h"
#include "devices/virtio/rng.h"
#include "snapshot/format.h"
#include "snapshot/registry.h"
#include "snapshot/stream.h"
#include "vmm/vm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int restore_read_config(struct snap_reader *r, struct snap_config *c, struct snap_record *out,
			char *err, size_t errlen)
{
	struct snap_record rec;
	int e = snap_reader_next(r, &rec);

	if (e)
		return e;
	if (rec.type != SNAP_REC_FULL || strcmp(rec.name, "configuration") || rec.instance) {
		snprintf(err, errlen, "the snapshot does not begin with its configuration section");
		return -EPROTO;
	}
	if (rec.version != SNAP_CONFIG_VERSION) {
		snprintf(err, errlen,
			 "section 'configuration': snapshot has version %u, this vmm supports %u to %u",
			 rec.version, SNAP_CONFIG_VERSION, SNAP_CONFIG_VERSION);
		return -EPROTO;
	}
	e = snap_config_load(snap_reader_stream(r), c, err, errlen);
	if (!e)
		e = snap_reader_record_end(r);
	if (!e && out)
		*out = rec;
	return e;
}

static int load_section(struct snap_reader *r, struct snap_registry *reg,
			const struct snap_record *rec, char *err, size_t errlen)
{
	struct snap_section *sec;
	int e = snap_registry_match(reg, rec->name, rec->instance, rec->version, &sec, err, errlen);

	if (e)
		return e;
	e = sec->ops->load(sec->opaque, snap_reader_stream(r), rec->version);
	if (!e)
		e = snap_reader_record_end(r);
	else
		snprintf(err, errlen, "section '%s' instance %u could not be loaded: %s",
			 rec->name, rec->instance, strerror(-e));
	return e;
}

int restore_load(struct snap_reader *r, struct vm *vm, struct ram_stats *ram, char *err,
		 size_t errlen)
{
	struct snap_registry reg;
	struct snap_record rec;
	int e = snapshot_build_registry(&reg, vm);

	if (e) {
		snprintf(err, errlen, "registering sections: %s", strerror(-e));
		return e;
	}
	snap_registry_begin_load(&reg);
	memset(ram, 0, sizeof(*ram));
	for (;;) {
		e = snap_reader_next(r, &rec);
		if (e)
			return e;
		if (rec.type == SNAP_REC_EOF)
			break;
		if (!strcmp(rec.name, "ram") && rec.instance == 0)
			e = ram_load_record(r, &rec, &vm->mem, ram, err, errlen);
		else if (rec.type == SNAP_REC_FULL)
			e = load_section(r, &reg, &rec, err, errlen);
		else {
			snprintf(err, errlen, "section '%s': iterative records for a section that has none",
				 rec.name);
			e = -EPROTO;
		}
		if (e)
			return e;
	}
	if (!ram->records) {
		snprintf(err, errlen, "the snapshot has no RAM section");
		return -EPROTO;
	}
	return snap_registry_check_loaded(&reg, err, errlen);
}

void restore_resume_devices(struct vm *vm)
{
	for (unsigned int i = 0; i < vm->cfg.ndisks; i++)
		virtio_mmio_resume(virtio_blk_transport(vm->disks[i]));
	for (unsigned int i = 0; i < vm->cfg.nnets; i++)
		virtio_mmio_resume(virtio_net_transport(vm->nets[i]));
	if (vm->rng)
		virtio_mmio_resume(virtio_rng_transport(vm->rng));
}
