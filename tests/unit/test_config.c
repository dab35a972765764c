/* Command-line and size parsing for `vmm run`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/config.h"
#include "vmm/log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void test_size_suffixes(void **state)
{
	uint64_t v;

	assert_int_equal(config_parse_size("512M", 1, &v), 0);
	assert_int_equal(v, 512ULL << 20);
	assert_int_equal(config_parse_size("2G", 1, &v), 0);
	assert_int_equal(v, 2ULL << 30);
	assert_int_equal(config_parse_size("4096k", 1, &v), 0);
	assert_int_equal(v, 4096ULL << 10);
	assert_int_equal(config_parse_size("1T", 1, &v), 0);
	assert_int_equal(v, 1ULL << 40);
	assert_int_equal(config_parse_size("64MiB", 1, &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(config_parse_size("64MB", 1, &v), 0);
	assert_int_equal(v, 64ULL << 20);
	assert_int_equal(config_parse_size("100B", 1ULL << 20, &v), 0);
	assert_int_equal(v, 100);
	/* A plain number takes the default unit. */
	assert_int_equal(config_parse_size("256", 1ULL << 20, &v), 0);
	assert_int_equal(v, 256ULL << 20);
}

static void test_size_errors(void **state)
{
	uint64_t v = 7;

	assert_int_equal(config_parse_size("", 1, &v), -EINVAL);
	assert_int_equal(config_parse_size("M", 1, &v), -EINVAL);
	assert_int_equal(config_parse_size("-1M", 1, &v), -EINVAL);
	assert_int_equal(config_parse_size("12Q", 1, &v), -EINVAL);
	assert_int_equal(config_parse_size("12MX", 1, &v), -EINVAL);
	assert_int_equal(config_parse_size(" 12M", 1, &v), -EINVAL);
	assert_int_equal(config_parse_size("99999999999999999999", 1, &v), -ERANGE);
	assert_int_equal(config_parse_size("17179869184G", 1, &v), -ERANGE);
	assert_int_equal(v, 7);  /* untouched on error */
}

static void test_uint(void **state)
{
	unsigned int v;

	assert_int_equal(config_parse_uint("4", &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(config_parse_uint("4x", &v), -EINVAL);
	assert_int_equal(config_parse_uint("-4", &v), -EINVAL);
	assert_int_equal(config_parse_uint("4294967296", &v), -ERANGE);
}

static int parse(struct vm_config *cfg, int *verbosity, ...)
{
	char *argv[32];
	int argc = 0;
	va_list ap;

	argv[argc++] = "run";
	va_start(ap, verbosity);
	for (char *a; (a = va_arg(ap, char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);
	argv[argc] = NULL;
	return config_parse_run(argc, argv, cfg, verbosity);
}

static void test_run_defaults(void **state)
{
	struct vm_config cfg;
	int verbosity = 0;

	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k.elf", NULL), 0);
	assert_string_equal(cfg.kernel, "k.elf");
	assert_int_equal(cfg.mem_size, CONFIG_DEFAULT_MEM);
	assert_int_equal(cfg.ncpus, 1);
	assert_string_equal(cfg.cmdline, "");
	assert_int_equal(cfg.console, VM_CONSOLE_STDIO);
	assert_null(cfg.api_sock);
}

static void test_run_all_options(void **state)
{
	struct vm_config cfg;
	int verbosity = 0;

	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--cmdline", "a=1 b",
			       "--mem", "1G", "--cpus", "2", "--api-sock", "/tmp/s",
			       "--console", "file=/tmp/out", "-v", "-v", NULL), 0);
	assert_string_equal(cfg.cmdline, "a=1 b");
	assert_int_equal(cfg.mem_size, 1ULL << 30);
	assert_int_equal(cfg.ncpus, 2);
	assert_string_equal(cfg.api_sock, "/tmp/s");
	assert_int_equal(cfg.console, VM_CONSOLE_FILE);
	assert_string_equal(cfg.console_path, "/tmp/out");
	assert_int_equal(verbosity, 2);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel=k", "--console=none",
			       "--mem=512", NULL), 0);
	assert_int_equal(cfg.console, VM_CONSOLE_NONE);
	assert_int_equal(cfg.mem_size, 512ULL << 20);
}

static void test_run_errors(void **state)
{
	struct vm_config cfg;
	int verbosity = 0;

	assert_int_equal(parse(&cfg, &verbosity, NULL), -EINVAL);  /* no --kernel */
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--cpus", "0", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--cpus", "two", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--mem", "1M", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--mem", "4097K", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--mem", "lots", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--console", "tty", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--console", "file=", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--bogus", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "extra", NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", NULL), -EINVAL);  /* missing value */
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--initrd", "i", NULL), -EINVAL);
}

static void test_run_devices(void **state)
{
	char disk1[] = "/img/a,b.raw", disk2[] = "/img/c.raw,ro", net1[] = "tap=tap0",
	     net2[] = "tap=vm1,mac=52:54:00:aa:bb:cc";
	struct vm_config cfg;
	int verbosity = 0;

	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--disk", disk1, "--disk", disk2,
			       "--net", net1, "--net", net2, "--rng", NULL), 0);
	assert_int_equal(cfg.ndisks, 2);
	assert_string_equal(cfg.disks[0].path, "/img/a,b.raw");  /* commas in paths */
	assert_false(cfg.disks[0].ro);
	assert_string_equal(cfg.disks[1].path, "/img/c.raw");
	assert_true(cfg.disks[1].ro);
	assert_int_equal(cfg.nnets, 2);
	assert_string_equal(cfg.nets[0].tap, "tap0");
	assert_false(cfg.nets[0].has_mac);
	assert_string_equal(cfg.nets[1].tap, "vm1");
	assert_true(cfg.nets[1].has_mac);
	assert_int_equal(cfg.nets[1].mac[0], 0x52);
	assert_int_equal(cfg.nets[1].mac[5], 0xcc);
	assert_true(cfg.rng);
}

static void test_run_device_errors(void **state)
{
	char empty[] = ",ro", nomac[] = "tap=t0,mac=zz", multicast[] = "tap=t0,mac=01:00:5e:00:00:01",
	     notap[] = "mac=52:54:00:00:00:01", bogus[] = "tap=t0,speed=10";
	struct vm_config cfg;
	int verbosity = 0;
	char disks[9][16];

	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--disk", empty, NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--net", nomac, NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--net", multicast, NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--net", notap, NULL), -EINVAL);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--net", bogus, NULL), -EINVAL);
	for (int i = 0; i < 9; i++)
		snprintf(disks[i], sizeof(disks[i]), "d%d.img", i);
	assert_int_equal(parse(&cfg, &verbosity, "--kernel", "k", "--disk", disks[0], "--disk",
			       disks[1], "--disk", disks[2], "--disk", disks[3], "--disk", disks[4],
			       "--disk", disks[5], "--disk", disks[6], "--disk", disks[7],
			       "--disk", disks[8], NULL), -EINVAL);  /* nine is one too many */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_size_suffixes),
		cmocka_unit_test(test_size_errors),
		cmocka_unit_test(test_uint),
		cmocka_unit_test(test_run_defaults),
		cmocka_unit_test(test_run_all_options),
		cmocka_unit_test(test_run_errors),
		cmocka_unit_test(test_run_devices),
		cmocka_unit_test(test_run_device_errors),
	};

	log_set_level(LOG_ERR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
