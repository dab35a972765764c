#include "snapshot/registry.h"
#include "snapshot/format.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

void snap_registry_init(struct snap_registry *reg)
{
	memset(reg, 0, sizeof(*reg));
}

/* The format's rule for section names (one definition, in format.c). */
bool snap_registry_name_valid(const char *name)
{
	return name && snap_format_name_valid(name, strlen(name));
}

struct snap_section *snap_registry_find(struct snap_registry *reg, const char *name,
					uint32_t instance)
{
	for (unsigned int i = 0; i < reg->n; i++)
		if (reg->sections[i].instance == instance && !strcmp(reg->sections[i].name, name))
			return &reg->sections[i];
	return NULL;
}

static int snap_registry_insert(struct snap_registry *reg, const char *name,
				uint32_t instance, struct snap_section **out)
{
	struct snap_section *sec;

	if (!snap_registry_name_valid(name))
		return -EINVAL;
	if (snap_registry_find(reg, name, instance))
		return -EEXIST;
	if (reg->n == SNAP_MAX_SECTIONS)
		return -ENOSPC;
	sec = &reg->sections[reg->n++];
	memset(sec, 0, sizeof(*sec));
	snprintf(sec->name, sizeof(sec->name), "%s", name);
	sec->instance = instance;
	*out = sec;
	return 0;
}

int snap_registry_add(struct snap_registry *reg, const struct snap_section_ops *ops,
		      uint32_t instance, void *opaque)
{
	struct snap_section *sec;
	int err;

	if (!ops || !ops->save || !ops->load || ops->version == 0 ||
	    ops->min_version == 0 || ops->min_version > ops->version)
		return -EINVAL;
	err = snap_registry_insert(reg, ops->name, instance, &sec);
	if (err)
		return err;
	sec->ops = ops;
	sec->opaque = opaque;
	return 0;
}

int snap_registry_add_unmigratable(struct snap_registry *reg, const char *name,
				   uint32_t instance, const char *reason)
{
	struct snap_section *sec;
	int err;

	if (!reason || !*reason)
		return -EINVAL;
	err = snap_registry_insert(reg, name, instance, &sec);
	if (!err)
		sec->unmigratable = reason;
	return err;
}

int snap_registry_check_savable(const struct snap_registry *reg, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < reg->n; i++) {
		const struct snap_section *sec = &reg->sections[i];

		if (sec->unmigratable) {
			snprintf(err, errlen, "section '%s' instance %u cannot be checkpointed: %s",
				 sec->name, sec->instance, sec->unmigratable);
			return -EPERM;
		}
	}
	return 0;
}

void snap_registry_begin_load(struct snap_registry *reg)
{
	for (unsigned int i = 0; i < reg->n; i++)
		reg->sections[i].loaded = false;
}

int snap_registry_match(struct snap_registry *reg, const char *name, uint32_t instance,
			uint32_t version, struct snap_section **out, char *err, size_t errlen)
{
	struct snap_section *sec = snap_registry_find(reg, name, instance);

	if (!sec || !sec->ops) {
		snprintf(err, errlen, "section '%s' instance %u: %s", name, instance,
			 sec ? "this VM cannot load it (unmigratable here)" :
			       "unknown to this vmm or absent from this VM's configuration");
		return -EPROTO;
	}
	if (sec->loaded) {
		snprintf(err, errlen, "section '%s' instance %u appears twice", name, instance);
		return -EPROTO;
	}
	if (version > sec->ops->version || version < sec->ops->min_version) {
		snprintf(err, errlen,
			 "section '%s' instance %u: snapshot has version %u, this vmm supports %u to %u",
			 name, instance, version, sec->ops->min_version, sec->ops->version);
		return -EPROTO;
	}
	sec->loaded = true;
	*out = sec;
	return 0;
}

int snap_registry_check_loaded(const struct snap_registry *reg, char *err, size_t errlen)
{
	for (unsigned int i = 0; i < reg->n; i++) {
		const struct snap_section *sec = &reg->sections[i];

		if (!sec->loaded) {
			snprintf(err, errlen, "section '%s' instance %u is missing from the snapshot",
				 sec->name, sec->instance);
			return -EPROTO;
		}
	}
	return 0;
}
