/* The section registry: every piece of VM state that goes into a snapshot
 * (each vCPU, the in-kernel chips, each device, RAM) registers a section
 * (name, instance, version, minimum version, save, load) explicitly, in code
 * read top to bottom — no constructors, no global list.
 *
 * Strong version checking (docs/snapshot-format.md): a snapshot section
 * newer than `version` or older than `min_version` is refused, naming the
 * section and both versions; an unknown section, a section twice, or a
 * registered section missing from the snapshot is refused too. A device
 * without a state description registers as unmigratable with a reason, and
 * a checkpoint then fails naming it instead of silently saving nothing. */
#ifndef SNAPSHOT_REGISTRY_H
#define SNAPSHOT_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_stream;

#define SNAP_MAX_SECTIONS 128
#define SNAP_NAME_MAX     64

struct snap_section_ops {
	const char *name;          /* [a-z0-9_.-]{1,64} */
	uint32_t version;          /* what save() writes */
	uint32_t min_version;      /* the oldest version load() reads */
	/* Write the section's data (sticky stream errors; return 0 or -errno
	 * for failures of its own, e.g. a KVM ioctl). */
	int (*save)(void *opaque, struct snap_stream *s);
	/* Read data written by save() at `version` (min_version..version). */
	int (*load)(void *opaque, struct snap_stream *s, uint32_t version);
};

struct snap_section {
	const struct snap_section_ops *ops;   /* NULL for an unmigratable one */
	char name[SNAP_NAME_MAX + 1];
	uint32_t instance;
	void *opaque;
	const char *unmigratable;             /* why it cannot be saved */
	bool loaded;
};

struct snap_registry {
	unsigned int n;
	struct snap_section sections[SNAP_MAX_SECTIONS];
};

void snap_registry_init(struct snap_registry *reg);
/* -EINVAL (bad name or versions), -EEXIST (name+instance taken), -ENOSPC. */
int snap_registry_add(struct snap_registry *reg, const struct snap_section_ops *ops,
		      uint32_t instance, void *opaque);
int snap_registry_add_unmigratable(struct snap_registry *reg, const char *name,
				   uint32_t instance, const char *reason);
struct snap_section *snap_registry_find(struct snap_registry *reg, const char *name,
					uint32_t instance);
bool snap_registry_name_valid(const char *name);

/* Before saving: 0, or -EPERM with err naming the first unmigratable section. */
int snap_registry_check_savable(const struct snap_registry *reg, char *err, size_t errlen);

/* Loading. Clears every section's loaded flag. */
void snap_registry_begin_load(struct snap_registry *reg);
/* A section record of the snapshot: find its registered section and check
 * the version. 0 and *out, or -EPROTO with err (unknown, twice, version). */
int snap_registry_match(struct snap_registry *reg, const char *name, uint32_t instance,
			uint32_t version, struct snap_section **out, char *err, size_t errlen);
/* After the EOF record: every registered section was loaded, or -EPROTO. */
int snap_registry_check_loaded(const struct snap_registry *reg, char *err, size_t errlen);

#endif
