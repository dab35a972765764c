/* Full checkpoints and restores of a whole VM (format v1; live and
 * background modes come with issue #5). */
#ifndef SNAPSHOT_CHECKPOINT_H
#define SNAPSHOT_CHECKPOINT_H

#include "snapshot/config_section.h"
#include "snapshot/ram.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct snap_registry;
struct snap_stream;
struct vm;

struct checkpoint_result {
	uint64_t bytes;            /* of the snapshot */
	double secs;               /* whole checkpoint */
	double pause_ms;           /* the guest's pause */
	struct ram_stats ram;
};

/* Every section of vm, in save/load order: in-kernel chips, vCPUs, legacy
 * devices, virtio devices. */
int snapshot_build_registry(struct snap_registry *reg, struct vm *vm);

/* Pause vm (vCPUs, then devices), write the whole snapshot to s (not yet
 * committed), and resume it unless leave_paused. page_aligned: s is a file
 * that supports the page-aligned RAM layout. err names the failing step. */
int checkpoint_full(struct vm *vm, struct snap_stream *s, bool page_aligned, bool leave_paused,
		    struct checkpoint_result *res, char *err, size_t errlen);

/* Read the configuration section (the first record) of a snapshot. */
struct snap_reader;
struct snap_record;
int restore_read_config(struct snap_reader *r, struct snap_config *c, struct snap_record *rec,
			char *err, size_t errlen);
/* Load everything after the configuration into vm (created from it with
 * cfg.restore set, not yet started). */
int restore_load(struct snap_reader *r, struct vm *vm, struct ram_stats *ram, char *err,
		 size_t errlen);
/* Let the restored devices look at their queues (after the vCPUs start). */
void restore_resume_devices(struct vm *vm);

#endif
