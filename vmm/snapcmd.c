/* The snapshot commands: `vmm checkpoint` (a control-socket client),
 * `vmm restore` and `vmm inspect`. */
#include "vmm/snapcmd.h"
#include "vmm/api.h"
#include "vmm/config.h"
#include "vmm/json.h"
#include "vmm/log.h"
#include "vmm/serve.h"
#include "devices/virtio/net.h"
#include "snapshot/checkpoint.h"
#include "snapshot/format.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* FILE as an absolute path (vmm, not the client, writes it). */
static int absolute_path(const char *file, char *out, size_t size)
{
	char dir[PATH_MAX], base[PATH_MAX], real[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s", file);
	snprintf(base, sizeof(base), "%s", file);
	if (!realpath(dirname(dir), real)) {
		log_err("--out %s: %s", file, strerror(errno));
		return -errno;
	}
	if ((size_t)snprintf(out, size, "%s/%s", real, basename(base)) >= size)
		return -ENAMETOOLONG;
	return 0;
}

int cmd_checkpoint(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "out", required_argument, NULL, 'o' },
		{ "mode", required_argument, NULL, 'm' },
		{ "then", required_argument, NULL, 't' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *out = NULL, *mode = "full", *then = "resume", *errmsg;
	const struct json_value *root, *ret;
	char path[PATH_MAX];
	struct json_writer w;
	struct json_doc *doc = NULL;
	char *response = NULL;
	bool force = false;
	int c, code = 1;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': sock = optarg; break;
		case 'o': out = optarg; break;
		case 'm': mode = optarg; break;
		case 't': then = optarg; break;
		case 'f': force = true; break;
		case 'h':
			printf("Usage: vmm checkpoint --api-sock PATH --out FILE [--mode full]\n"
			       "                      [--then resume|pause|exit] [--force]\n\n"
			       "Save the running guest to FILE (written by the vmm serving PATH; it\n"
			       "appears only once complete and on stable storage). --then: what the\n"
			       "guest does afterwards (default resume). --force replaces FILE.\n");
			return 0;
		default:
			log_err("bad option '%s' for 'vmm checkpoint' (see vmm checkpoint --help)",
				argv[optind - 1]);
			return 2;
		}
	}
	if (!sock || !out || optind < argc) {
		log_err("usage: vmm checkpoint --api-sock PATH --out FILE [--mode full] [--then resume|pause|exit]");
		return 2;
	}
	if (strcmp(mode, "full")) {
		log_err("--mode %s: only full checkpoints are available in this build", mode);
		return 2;
	}
	if (!strcmp(out, "-")) {
		/* Streamed to our stdout: vmm writes into the descriptor we pass. */
		if (isatty(STDOUT_FILENO)) {
			log_err("--out -: refusing to write a snapshot to a terminal");
			return 2;
		}
		snprintf(path, sizeof(path), "-");
	} else if (absolute_path(out, path, sizeof(path))) {
		return 1;
	}
	json_writer_init(&w);
	json_write_object_begin(&w);
	json_write_key(&w, "execute");
	json_write_string(&w, "checkpoint");
	json_write_key(&w, "arguments");
	json_write_object_begin(&w);
	json_write_key(&w, "out");
	json_write_string(&w, path);
	json_write_key(&w, "mode");
	json_write_string(&w, mode);
	json_write_key(&w, "then");
	json_write_string(&w, then);
	json_write_key(&w, "overwrite");
	json_write_bool(&w, force);
	json_write_object_end(&w);
	json_write_object_end(&w);
	if (!json_writer_text(&w) ||
	    api_client_request_fd(sock, json_writer_text(&w), strcmp(path, "-") ? -1 : STDOUT_FILENO,
				  &response) < 0)
		goto out;
	if (json_parse(response, strlen(response), &doc, &errmsg) < 0) {
		log_err("control socket %s: malformed response: %s", sock, errmsg);
		goto out;
	}
	root = json_doc_root(doc);
	ret = json_object_get(root, "return");
	if (!ret) {
		const char *desc = json_get_string(json_object_get(json_object_get(root, "error"), "desc"));

		log_err("%s", desc ? desc : "checkpoint failed");
		goto out;
	}
	{
		uint64_t bytes = 0;
		double secs = 0, pause = 0;

		json_get_u64(json_object_get(ret, "bytes"), &bytes);
		json_get_double(json_object_get(ret, "seconds"), &secs);
		json_get_double(json_object_get(ret, "pause_ms"), &pause);
		/* With --out -, stdout is the snapshot: the report goes to stderr. */
		fprintf(strcmp(path, "-") ? stdout : stderr,
			"checkpoint: %s: %.1f MiB in %.3f s (%.0f MB/s), guest paused %.1f ms\n",
		       path, (double)bytes / (1 << 20), secs, secs > 0 ? (double)bytes / secs / 1e6 : 0,
		       pause);
	}
	code = 0;
out:
	json_writer_free(&w);
	json_doc_free(doc);
	free(response);
	return code;
}

/* Open FILE or stdin ("-") and read the header. */
static int open_snapshot(const char *from, struct snap_stream **s, struct snap_reader *r,
			 char *err, size_t errlen)
{
	int e = strcmp(from, "-") ? snap_stream_open_file(from, s) :
				    snap_stream_open_fd(0, SNAP_STREAM_READ, false, s);

	if (e) {
		snprintf(err, errlen, "cannot open %s: %s", from, strerror(-e));
		return e;
	}
	e = snap_reader_begin(*s, r, err, errlen);
	if (e)
		snap_stream_close(*s);
	return e;
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "paused", no_argument, NULL, 'p' },
		{ "api-sock", required_argument, NULL, 's' },
		{ "console", required_argument, NULL, 'c' },
		{ "disk", required_argument, NULL, 'd' },
		{ "net", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct snap_config sc;
	const char *from = NULL, *sock = NULL, *console = NULL, *disks[VM_MAX_DISKS], *nets[VM_MAX_NETS];
	unsigned int ndisks = 0, nnets = 0;
	int c, verbosity = 0, code;
	bool paused = false;
	struct snap_stream *s;
	struct snap_reader r;
	struct vm_config cfg;
	char err[512] = "";

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'f': from = optarg; break;
		case 'p': paused = true; break;
		case 's': sock = optarg; break;
		case 'c': console = optarg; break;
		case 'd':
			if (ndisks == VM_MAX_DISKS) {
				log_err("--disk: at most %d", VM_MAX_DISKS);
				return 2;
			}
			disks[ndisks++] = optarg;
			break;
		case 'n':
			if (nnets == VM_MAX_NETS || strncmp(optarg, "tap=", 4) || !optarg[4]) {
				log_err("--net: expected tap=IFNAME (at most %d)", VM_MAX_NETS);
				return 2;
			}
			nets[nnets++] = optarg + 4;
			break;
		case 'v': verbosity++; break;
		case 'q': verbosity = -1; break;
		case 'h':
			printf("Usage: vmm restore --from FILE|- [--paused] [--api-sock PATH]\n"
			       "                   [--console stdio|none|file=PATH]\n"
			       "                   [--disk FILE]... [--net tap=IFNAME]...\n\n"
			       "Run a guest from a snapshot where it was saved. --disk/--net replace,\n"
			       "in order, the host resources recorded in the snapshot (the disk must\n"
			       "be the same image, or a copy). --paused: wait for `vmm resume`.\n");
			return 0;
		default:
			log_err("bad option '%s' for 'vmm restore' (see vmm restore --help)",
				argv[optind - 1]);
			return 2;
		}
	}
	if (!from || optind < argc) {
		log_err("usage: vmm restore --from FILE|- [--paused] [--api-sock PATH]");
		return 2;
	}
	log_set_verbosity(verbosity);
	if (open_snapshot(from, &s, &r, err, sizeof(err))) {
		log_err("restore: %s", err);
		return 1;
	}
	code = 1;
	if (restore_read_config(&r, &sc, NULL, err, sizeof(err)) ||
	    snap_config_check_host(&sc, -1, err, sizeof(err))) {
		log_err("restore: %s: %s", from, err);
		goto out;
	}
	if (ndisks > sc.ndisks || nnets > sc.nnets) {
		log_err("restore: the snapshot has %u disks and %u network devices; more overrides were given",
			sc.ndisks, sc.nnets);
		code = 2;
		goto out;
	}
	snap_config_to_vm(&sc, &cfg);
	for (unsigned int i = 0; i < ndisks; i++)
		cfg.disks[i].path = disks[i];
	for (unsigned int i = 0; i < nnets; i++)
		cfg.nets[i].tap = nets[i];
	cfg.restore = true;
	cfg.api_sock = sock;
	cfg.stdin_taken = !strcmp(from, "-");   /* the snapshot, not console input */
	if (console && config_parse_console(console, &cfg)) {
		code = 2;
		goto out;
	}
	code = vmm_serve(&cfg, &r, paused);
out:
	snap_reader_release(&r);
	snap_stream_close(s);
	return code;
}

/* `vmm inspect FILE|- [--json]`: every record is read and its checksums
 * verified; the first damage ends it with a non-zero exit naming it. */
int cmd_inspect(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct snap_config sc;
	const char *from;
	struct snap_stream *s;
	struct snap_reader r;
	struct snap_record rec;
	struct json_writer w;
	bool json = false;
	uint64_t ram_records = 0, ram_bytes = 0, nsections = 0;
	char err[512] = "";
	int c, e, code = 1;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
		} else if (c == 'h') {
			printf("Usage: vmm inspect FILE|- [--json]\n\nDescribe a snapshot and verify every checksum in it.\n");
			return 0;
		} else {
			log_err("bad option '%s' for 'vmm inspect'", argv[optind - 1]);
			return 2;
		}
	}
	if (optind != argc - 1) {
		log_err("usage: vmm inspect FILE|- [--json]");
		return 2;
	}
	from = argv[optind];
	if (open_snapshot(from, &s, &r, err, sizeof(err))) {
		log_err("inspect: %s", err);
		return 1;
	}
	json_writer_init(&w);
	if (restore_read_config(&r, &sc, &rec, err, sizeof(err)))
		goto out;
	nsections = 1;
	json_write_object_begin(&w);
	json_write_key(&w, "format_version");
	json_write_u64(&w, r.hdr.format_version);
	json_write_key(&w, "writer");
	json_write_string(&w, r.hdr.writer);
	json_write_key(&w, "created_ns");
	json_write_u64(&w, r.hdr.created_ns);
	json_write_key(&w, "mem_bytes");
	json_write_u64(&w, sc.mem_size);
	json_write_key(&w, "vcpus");
	json_write_u64(&w, sc.ncpus);
	json_write_key(&w, "kernel");
	json_write_string(&w, sc.kernel);
	json_write_key(&w, "cmdline");
	json_write_string(&w, sc.cmdline);
	json_write_key(&w, "disks");
	json_write_array_begin(&w);
	for (unsigned int i = 0; i < sc.ndisks; i++)
		json_write_string(&w, sc.disks[i].path);
	json_write_array_end(&w);
	json_write_key(&w, "sections");
	json_write_array_begin(&w);
	if (!json) {
		printf("snapshot %s: format %u, written by %s\n", from, r.hdr.format_version,
		       r.hdr.writer);
		printf("  VM: %llu MiB RAM, %u vCPU(s), %u disk(s), %u network device(s)%s, CPU %s\n",
		       (unsigned long long)(sc.mem_size >> 20), sc.ncpus, sc.ndisks, sc.nnets,
		       sc.rng ? ", rng" : "", sc.vendor);
		printf("  kernel %s, cmdline \"%s\"\n", sc.kernel, sc.cmdline);
		printf("  sections:\n");
		printf("    %-14s instance %-3u version %-3u %8llu bytes\n", rec.name, rec.instance,
		       rec.version, (unsigned long long)rec.data_len);
	}
	json_write_object_begin(&w);
	json_write_key(&w, "name");
	json_write_string(&w, rec.name);
	json_write_key(&w, "instance");
	json_write_u64(&w, rec.instance);
	json_write_key(&w, "version");
	json_write_u64(&w, rec.version);
	json_write_key(&w, "bytes");
	json_write_u64(&w, rec.data_len);
	json_write_object_end(&w);
	for (;;) {
		e = snap_reader_next(&r, &rec);
		if (e)
			goto out;
		if (rec.type == SNAP_REC_EOF)
			break;
		if (rec.type == SNAP_REC_FULL || rec.type == SNAP_REC_START)
			nsections++;
		if (!strcmp(rec.name, "ram")) {
			ram_records++;
			ram_bytes += rec.payload_len;
		} else {
			if (!json)
				printf("    %-14s instance %-3u version %-3u %8llu bytes\n", rec.name,
				       rec.instance, rec.version, (unsigned long long)rec.data_len);
			json_write_object_begin(&w);
			json_write_key(&w, "name");
			json_write_string(&w, rec.name);
			json_write_key(&w, "instance");
			json_write_u64(&w, rec.instance);
			json_write_key(&w, "version");
			json_write_u64(&w, rec.version);
			json_write_key(&w, "bytes");
			json_write_u64(&w, rec.data_len);
			json_write_object_end(&w);
		}
		snap_reader_skip_payload(&r);   /* still read, so its CRC is checked */
		e = snap_reader_record_end(&r);
		if (e)
			goto out;
	}
	json_write_array_end(&w);
	json_write_key(&w, "ram_records");
	json_write_u64(&w, ram_records);
	json_write_key(&w, "ram_payload_bytes");
	json_write_u64(&w, ram_bytes);
	json_write_key(&w, "total_bytes");
	json_write_u64(&w, rec.eof_total_bytes + SNAP_RECORD_HEADER_SIZE + SNAP_EOF_PAYLOAD_LEN +
			       SNAP_RECORD_CRC_SIZE);
	json_write_key(&w, "checksums");
	json_write_string(&w, "ok");
	json_write_object_end(&w);
	if (json)
		printf("%s\n", json_writer_text(&w) ? json_writer_text(&w) : "{}");
	else
		printf("  RAM: %llu records, %.1f MiB (zero pages not stored)\n  %llu sections, every checksum verified\n",
		       (unsigned long long)ram_records, (double)ram_bytes / (1 << 20),
		       (unsigned long long)nsections);
	code = 0;
out:
	if (code)
		log_err("inspect: %s: %s", from, err[0] ? err : "damaged");
	json_writer_free(&w);
	snap_reader_release(&r);
	snap_stream_close(s);
	return code;
}
