/* Command-line parsing for `vmm run` (and the size syntax shared by all
 * commands). Pure functions: unit-tested without KVM. */
#ifndef VMM_CONFIG_H
#define VMM_CONFIG_H

#include "vmm/vm.h"

#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_MEM   (128ULL << 20)
#define CONFIG_DEFAULT_CPUS  1

/* "64M", "2G", "4096K", "1048576B"; a plain number is in default_unit bytes.
 * 0 or -EINVAL (syntax) / -ERANGE (overflow). */
int config_parse_size(const char *s, uint64_t default_unit, uint64_t *out);
int config_parse_uint(const char *s, unsigned int *out);

/* Parse `vmm run` options (argv[0] is "run"). Returns 0, 1 if --help was
 * printed, or -EINVAL after printing one line naming the problem. */
int config_parse_run(int argc, char **argv, struct vm_config *cfg, int *verbosity);
void config_print_run_help(FILE *f);
/* --console stdio|none|file=PATH into cfg; -EINVAL after logging why. */
int config_parse_console(const char *s, struct vm_config *cfg);

#endif
