#include "vmm/config.h"
#include "vmm/layout.h"
#include "vmm/log.h"
#include "devices/virtio/net.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

int config_parse_size(const char *s, uint64_t default_unit, uint64_t *out)
{
	unsigned long long v;
	uint64_t unit = default_unit;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case '\0':
		break;
	case 'B':
		unit = 1;
		end++;
		break;
	case 'K':
		unit = 1ULL << 10;
		end++;
		break;
	case 'M':
		unit = 1ULL << 20;
		end++;
		break;
	case 'G':
		unit = 1ULL << 30;
		end++;
		break;
	case 'T':
		unit = 1ULL << 40;
		end++;
		break;
	default:
		return -EINVAL;
	}
	/* Accept "M", "MB", "MiB". */
	if (unit != 1 && (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0 ||
			  strcmp(end, "ib") == 0 || strcmp(end, "b") == 0))
		end += strlen(end);
	if (*end != '\0')
		return -EINVAL;
	if (unit && v > UINT64_MAX / unit)
		return -ERANGE;
	*out = v * unit;
	return 0;
}

int config_parse_uint(const char *s, unsigned int *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno == ERANGE || v > 0xffffffffUL)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	*out = (unsigned int)v;
	return 0;
}

void config_print_run_help(FILE *f)
{
	fputs(
"Usage: vmm run --kernel FILE [options]\n"
"\n"
"Start a guest on KVM. Its console is this terminal unless --console says\n"
"otherwise; press Ctrl-A x to end vmm from an interactive console.\n"
"\n"
"  --kernel FILE        guest kernel: an ELF64 executable (see docs/boot-contract.md)\n"
"  --cmdline STR        guest command line (at most 4095 bytes)\n"
"  --mem SIZE           guest RAM, with a K/M/G suffix; a plain number is MiB\n"
"                       (default 128M, at least 2M, a multiple of 4K)\n"
"  --cpus N             vCPUs, all started at the kernel's entry (default 1)\n"
"  --api-sock PATH      control socket (JSON lines; see docs/cli.md), mode 0600\n"
"  --console MODE       stdio (default): output to stdout, input from stdin;\n"
"                       none: discard output; file=PATH: output to PATH\n"
"  --disk FILE[,ro]     a virtio-blk disk on a raw image (repeatable, up to 8);\n"
"                       ro: read-only, guest writes fail with an I/O error\n"
"  --net tap=IFNAME[,mac=MAC]\n"
"                       a virtio-net device on tap IFNAME (created if absent;\n"
"                       repeatable, up to 4); MAC default: random 52:54:00:xx:xx:xx\n"
"  --rng                a virtio-rng device fed by the host's getrandom()\n"
"  -v, --verbose        more of vmm's own messages on stderr (repeatable)\n"
"  -q, --quiet          errors only\n"
"  -h, --help           this text\n"
"\n"
"Exit status: 0 the guest reset or powered off, or `vmm stop`; 1 vmm failed;\n"
"2 bad command line; 3 the guest crashed (triple fault, emulation failure).\n",
	      f);
}

int config_parse_console(const char *s, struct vm_config *cfg)
{
	if (strcmp(s, "stdio") == 0) {
		cfg->console = VM_CONSOLE_STDIO;
	} else if (strcmp(s, "none") == 0) {
		cfg->console = VM_CONSOLE_NONE;
	} else if (strncmp(s, "file=", 5) == 0 && s[5]) {
		cfg->console = VM_CONSOLE_FILE;
		cfg->console_path = s + 5;
	} else {
		log_err("--console '%s': expected stdio, none or file=PATH", s);
		return -EINVAL;
	}
	return 0;
}

static int config_parse_mem(const char *s, struct vm_config *cfg)
{
	int err = config_parse_size(s, 1ULL << 20, &cfg->mem_size);

	if (err) {
		log_err("--mem '%s': %s", s, err == -ERANGE ? "too large" :
			"expected a size such as 512M or 2G");
		return -EINVAL;
	}
	if (cfg->mem_size < LAYOUT_MIN_MEM) {
		log_err("--mem '%s' is too small: vmm needs at least 2 MiB", s);
		return -EINVAL;
	}
	if (cfg->mem_size & 0xfff) {
		log_err("--mem '%s' is not a multiple of 4 KiB", s);
		return -EINVAL;
	}
	return 0;
}

/* FILE[,ro]: options are recognised only at the end, so paths may hold commas. */
static int config_parse_disk(char *s, struct vm_config *cfg)
{
	struct vm_disk *d;
	char *comma;

	if (cfg->ndisks == VM_MAX_DISKS) {
		log_err("--disk: at most %d disks", VM_MAX_DISKS);
		return -EINVAL;
	}
	d = &cfg->disks[cfg->ndisks];
	memset(d, 0, sizeof(*d));
	while ((comma = strrchr(s, ',')) != NULL && strcmp(comma + 1, "ro") == 0) {
		d->ro = true;
		*comma = '\0';
	}
	if (!*s) {
		log_err("--disk: expected FILE[,ro]");
		return -EINVAL;
	}
	d->path = s;
	cfg->ndisks++;
	return 0;
}

/* tap=IFNAME[,mac=MAC] */
static int config_parse_net(char *s, struct vm_config *cfg)
{
	struct vm_net *n;
	char *opt, *save = NULL;

	if (cfg->nnets == VM_MAX_NETS) {
		log_err("--net: at most %d network devices", VM_MAX_NETS);
		return -EINVAL;
	}
	n = &cfg->nets[cfg->nnets];
	memset(n, 0, sizeof(*n));
	for (opt = strtok_r(s, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		if (strncmp(opt, "tap=", 4) == 0 && opt[4]) {
			n->tap = opt + 4;
		} else if (strncmp(opt, "mac=", 4) == 0) {
			if (virtio_net_parse_mac(opt + 4, n->mac)) {
				log_err("--net: mac '%s': expected a unicast address like 52:54:00:12:34:56",
					opt + 4);
				return -EINVAL;
			}
			n->has_mac = true;
		} else {
			log_err("--net: unknown option '%s' (expected tap=IFNAME[,mac=MAC])", opt);
			return -EINVAL;
		}
	}
	if (!n->tap) {
		log_err("--net: tap=IFNAME is required");
		return -EINVAL;
	}
	cfg->nnets++;
	return 0;
}

enum { OPT_KERNEL = 256, OPT_INITRD, OPT_CMDLINE, OPT_MEM, OPT_CPUS, OPT_API_SOCK,
       OPT_CONSOLE, OPT_DISK, OPT_NET, OPT_RNG };

int config_parse_run(int argc, char **argv, struct vm_config *cfg, int *verbosity)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "mem", required_argument, NULL, OPT_MEM },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "api-sock", required_argument, NULL, OPT_API_SOCK },
		{ "console", required_argument, NULL, OPT_CONSOLE },
		{ "disk", required_argument, NULL, OPT_DISK },
		{ "net", required_argument, NULL, OPT_NET },
		{ "rng", no_argument, NULL, OPT_RNG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->mem_size = CONFIG_DEFAULT_MEM;
	cfg->ncpus = CONFIG_DEFAULT_CPUS;
	cfg->cmdline = "";
	optind = 0;   /* full re-initialisation, so parsing can run more than once */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vqh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_KERNEL:
			cfg->kernel = optarg;
			break;
		case OPT_INITRD:
			cfg->initrd = optarg;
			break;
		case OPT_CMDLINE:
			cfg->cmdline = optarg;
			break;
		case OPT_MEM:
			if (config_parse_mem(optarg, cfg))
				return -EINVAL;
			break;
		case OPT_CPUS:
			if (config_parse_uint(optarg, &cfg->ncpus) || cfg->ncpus == 0) {
				log_err("--cpus '%s': expected a number of vCPUs, 1 or more", optarg);
				return -EINVAL;
			}
			break;
		case OPT_API_SOCK:
			cfg->api_sock = optarg;
			break;
		case OPT_CONSOLE:
			if (config_parse_console(optarg, cfg))
				return -EINVAL;
			break;
		case OPT_DISK:
			if (config_parse_disk(optarg, cfg))
				return -EINVAL;
			break;
		case OPT_NET:
			if (config_parse_net(optarg, cfg))
				return -EINVAL;
			break;
		case OPT_RNG:
			cfg->rng = true;
			break;
		case 'v':
			(*verbosity)++;
			break;
		case 'q':
			*verbosity = -1;
			break;
		case 'h':
			config_print_run_help(stdout);
			return 1;
		case ':':
			log_err("option '%s' needs a value", argv[optind - 1]);
			return -EINVAL;
		default:
			log_err("unknown option '%s' for 'vmm run' (see vmm run --help)",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s' (see vmm run --help)", argv[optind]);
		return -EINVAL;
	}
	if (!cfg->kernel) {
		log_err("--kernel FILE is required (see vmm run --help)");
		return -EINVAL;
	}
	if (cfg->initrd) {
		log_err("--initrd needs a Linux bzImage kernel, which this build does not boot yet");
		return -EINVAL;
	}
	return 0;
}
