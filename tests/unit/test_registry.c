/* Section registry: registration rules and strong version checking. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "snapshot/registry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int nop_save(void *opaque, struct snap_stream *s)
{
	return 0;
}

static int nop_load(void *opaque, struct snap_stream *s, uint32_t version)
{
	return 0;
}

static const struct snap_section_ops cpu_ops = {
	.name = "cpu", .version = 3, .min_version = 2, .save = nop_save, .load = nop_load,
};
static const struct snap_section_ops serial_ops = {
	.name = "serial", .version = 1, .min_version = 1, .save = nop_save, .load = nop_load,
};

static void test_add_rules(void **state)
{
	static const struct snap_section_ops bad_name = {
		.name = "Bad Name", .version = 1, .min_version = 1, .save = nop_save, .load = nop_load,
	};
	static const struct snap_section_ops bad_versions = {
		.name = "x", .version = 1, .min_version = 2, .save = nop_save, .load = nop_load,
	};
	static const struct snap_section_ops no_load = {
		.name = "x", .version = 1, .min_version = 1, .save = nop_save,
	};
	struct snap_registry reg;

	snap_registry_init(&reg);
	assert_int_equal(snap_registry_add(&reg, &cpu_ops, 0, NULL), 0);
	assert_int_equal(snap_registry_add(&reg, &cpu_ops, 1, NULL), 0);
	assert_int_equal(snap_registry_add(&reg, &cpu_ops, 1, NULL), -EEXIST);
	assert_int_equal(snap_registry_add(&reg, &bad_name, 0, NULL), -EINVAL);
	assert_int_equal(snap_registry_add(&reg, &bad_versions, 0, NULL), -EINVAL);
	assert_int_equal(snap_registry_add(&reg, &no_load, 0, NULL), -EINVAL);
	assert_int_equal(snap_registry_add_unmigratable(&reg, "cpu", 0, "x"), -EEXIST);
	assert_int_equal(snap_registry_add_unmigratable(&reg, "gpu", 0, ""), -EINVAL);
	assert_non_null(snap_registry_find(&reg, "cpu", 1));
	assert_null(snap_registry_find(&reg, "cpu", 2));
	assert_true(snap_registry_name_valid("virtio-blk"));
	assert_true(snap_registry_name_valid("a.b_c-9"));
	assert_false(snap_registry_name_valid(""));
	assert_false(snap_registry_name_valid("CPU"));
	{
		char longname[SNAP_NAME_MAX + 2];

		memset(longname, 'a', sizeof(longname) - 1);
		longname[SNAP_NAME_MAX + 1] = '\0';
		assert_false(snap_registry_name_valid(longname));
		longname[SNAP_NAME_MAX] = '\0';
		assert_true(snap_registry_name_valid(longname));
	}
}

static void test_full(void **state)
{
	static struct snap_registry reg;
	static char names[SNAP_MAX_SECTIONS + 1][16];
	static struct snap_section_ops ops[SNAP_MAX_SECTIONS + 1];

	snap_registry_init(&reg);
	for (int i = 0; i <= SNAP_MAX_SECTIONS; i++) {
		ops[i] = serial_ops;
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		ops[i].name = names[i];
		assert_int_equal(snap_registry_add(&reg, &ops[i], 0, NULL),
				 i < SNAP_MAX_SECTIONS ? 0 : -ENOSPC);
	}
}

static void test_unmigratable(void **state)
{
	struct snap_registry reg;
	char err[256];

	snap_registry_init(&reg);
	assert_int_equal(snap_registry_add(&reg, &cpu_ops, 0, NULL), 0);
	assert_int_equal(snap_registry_check_savable(&reg, err, sizeof(err)), 0);
	assert_int_equal(snap_registry_add_unmigratable(&reg, "vfio", 2, "device passthrough"), 0);
	assert_int_equal(snap_registry_check_savable(&reg, err, sizeof(err)), -EPERM);
	assert_string_equal(err, "section 'vfio' instance 2 cannot be checkpointed: device passthrough");
}

static void test_version_checks(void **state)
{
	struct snap_registry reg;
	struct snap_section *sec;
	char err[256];

	snap_registry_init(&reg);
	assert_int_equal(snap_registry_add(&reg, &cpu_ops, 0, NULL), 0);
	assert_int_equal(snap_registry_add(&reg, &serial_ops, 0, NULL), 0);
	snap_registry_begin_load(&reg);
	/* Newer than this build: refused, naming both versions. */
	assert_int_equal(snap_registry_match(&reg, "cpu", 0, 4, &sec, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "section 'cpu' instance 0: snapshot has version 4, this vmm supports 2 to 3");
	/* Older than the minimum. */
	assert_int_equal(snap_registry_match(&reg, "cpu", 0, 1, &sec, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "version 1"));
	/* In range: accepted, once. */
	assert_int_equal(snap_registry_match(&reg, "cpu", 0, 2, &sec, err, sizeof(err)), 0);
	assert_ptr_equal(sec->ops, &cpu_ops);
	assert_int_equal(snap_registry_match(&reg, "cpu", 0, 3, &sec, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "twice"));
	/* Unknown section, unknown instance. */
	assert_int_equal(snap_registry_match(&reg, "gpu", 0, 1, &sec, err, sizeof(err)), -EPROTO);
	assert_non_null(strstr(err, "unknown"));
	assert_int_equal(snap_registry_match(&reg, "cpu", 1, 3, &sec, err, sizeof(err)), -EPROTO);
	/* A required section missing. */
	assert_int_equal(snap_registry_check_loaded(&reg, err, sizeof(err)), -EPROTO);
	assert_string_equal(err, "section 'serial' instance 0 is missing from the snapshot");
	assert_int_equal(snap_registry_match(&reg, "serial", 0, 1, &sec, err, sizeof(err)), 0);
	assert_int_equal(snap_registry_check_loaded(&reg, err, sizeof(err)), 0);
	/* A new load starts over. */
	snap_registry_begin_load(&reg);
	assert_int_equal(snap_registry_check_loaded(&reg, err, sizeof(err)), -EPROTO);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_rules),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_unmigratable),
		cmocka_unit_test(test_version_checks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
