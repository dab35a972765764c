/* vmm: command dispatch. The only file that calls exit(). */
#include "vmm/api.h"
#include "vmm/config.h"
#include "vmm/console.h"
#include "vmm/json.h"
#include "vmm/log.h"
#include "vmm/loop.h"
#include "vmm/vm.h"
#include "vmm/serve.h"
#include "vmm/snapcmd.h"
#include "snapshot/checkpoint.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <unistd.h>

#define VMM_VERSION "0.1.0"

static void usage(FILE *f)
{
	fputs(
"Usage: vmm COMMAND [options]\n"
"\n"
"A KVM micro-VMM built for checkpoint/restore.\n"
"\n"
"Commands:\n"
"  run      start a guest (vmm run --help)\n"
"  checkpoint  save a running guest to a file  (--api-sock PATH --out FILE)\n"
"  restore  run a guest from a snapshot        (--from FILE)\n"
"  inspect  describe a snapshot, verify its checksums (FILE [--json])\n"
"  status   print a running vmm's state as JSON      (--api-sock PATH)\n"
"  pause    stop a running guest's vCPUs             (--api-sock PATH)\n"
"  resume   let a paused guest run again             (--api-sock PATH)\n"
"  stop     end a running vmm and its guest          (--api-sock PATH)\n"
"\n"
"  vmm --help | --version\n"
"\n"
"Documentation: docs/cli.md, docs/boot-contract.md.\n",
	      f);
}

static const int run_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

struct run_ctx {
	struct vm *vm;
	struct loop *loop;
};

static void on_vm_exit(void *opaque, int fd, uint32_t events)
{
	struct run_ctx *ctx = opaque;
	uint64_t v;

	if (read(fd, &v, sizeof(v)) < 0) {
		/* Nonblocking eventfd: a failed read only means already consumed. */
	}
	loop_quit(ctx->loop);
}

static void on_signal(void *opaque, int fd, uint32_t events)
{
	struct run_ctx *ctx = opaque;
	struct signalfd_siginfo si;

	if (read(fd, &si, sizeof(si)) != sizeof(si))
		return;
	vm_request_exit(ctx->vm, 128 + (int)si.ssi_signo, "stopped by signal %s",
			strsignal((int)si.ssi_signo));
}

static int block_run_signals(sigset_t *set)
{
	sigemptyset(set);
	for (size_t i = 0; i < sizeof(run_signals) / sizeof(run_signals[0]); i++)
		sigaddset(set, run_signals[i]);
	/* Blocked before any thread starts, so only the signalfd sees them. */
	return pthread_sigmask(SIG_BLOCK, set, NULL) ? -EINVAL : 0;
}

static int cmd_run(int argc, char **argv)
{
	struct vm_config cfg;
	int verbosity = 0, err;

	err = config_parse_run(argc, argv, &cfg, &verbosity);
	if (err)
		return err > 0 ? 0 : VM_EXIT_USAGE;
	log_set_verbosity(verbosity);
	return vmm_serve(&cfg, NULL, false);
}

/* Create the VM (from a kernel, or from the snapshot r is reading), run it
 * with its console, control socket and signals until it ends; returns the
 * exit status. */
int vmm_serve(struct vm_config *cfg_in, struct snap_reader *restore, bool paused)
{
	struct run_ctx ctx = { 0 };
	struct vm_config cfg = *cfg_in;
	struct console console = { .in_fd = -1, .out_fd = -1, .retry_fd = -1 };
	struct api *api = NULL;
	int sfd = -1, code = VM_EXIT_ERROR;
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);
	if (block_run_signals(&set) < 0)
		return VM_EXIT_ERROR;
	sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0 || loop_create(&ctx.loop) < 0) {
		log_err("cannot set up the event loop: %s", strerror(errno));
		goto out;
	}
	if (console_open(&console, cfg.console, cfg.console_path) < 0)
		goto out;
	if (cfg.stdin_taken)
		console.in_fd = -1;
	if (vm_create(&cfg, console.out_fd, &ctx.vm) < 0)
		goto out;
	if (restore) {
		struct ram_stats ram;
		char err[512] = "";
		int e = restore_load(restore, ctx.vm, &ram, err, sizeof(err));

		if (e) {
			log_err("restore: %s", err[0] ? err : strerror(-e));
			goto out;
		}
		log_info("restored %llu MiB of RAM data in %llu records",
			 (unsigned long long)(ram.bytes_data >> 20), (unsigned long long)ram.records);
		if (paused)
			vm_pause_before_start(ctx.vm);
	}
	if (loop_add(ctx.loop, ctx.vm->exit_efd, EPOLLIN, on_vm_exit, &ctx) < 0 ||
	    loop_add(ctx.loop, sfd, EPOLLIN, on_signal, &ctx) < 0) {
		log_err("cannot set up the event loop");
		goto out;
	}
	if (cfg.api_sock && api_create(ctx.vm, ctx.loop, cfg.api_sock, &api) < 0)
		goto out;
	if (console_attach(&console, ctx.vm, ctx.vm->serial, ctx.loop) < 0) {
		log_err("cannot attach the console: %s", strerror(errno));
		goto out;
	}
	log_info("starting %s guest '%s': %u vCPU(s), %llu MiB",
		 restore ? "restored" : ctx.vm->boot.format,
		 cfg.kernel, cfg.ncpus, (unsigned long long)(cfg.mem_size >> 20));
	if (vm_start(ctx.vm) < 0) {
		vm_request_exit(ctx.vm, VM_EXIT_ERROR, "could not start the vCPUs");
	} else {
		if (restore)
			restore_resume_devices(ctx.vm);
		if (loop_run(ctx.loop) < 0)
			vm_request_exit(ctx.vm, VM_EXIT_ERROR, "event loop failed: %s",
					strerror(errno));
	}
	log_debug("exit requested: %s", ctx.vm->exit_msg);
	vm_stop(ctx.vm);
	log_debug("vCPU threads joined");
	code = ctx.vm->exit_code;
	/* Restore the terminal before the last message, so it prints cleanly. */
	console_close(&console);
	if (code == VM_EXIT_OK)
		log_info("%s", ctx.vm->exit_msg);
	else
		log_err("%s", ctx.vm->exit_msg);
out:
	api_destroy(api);
	console_close(&console);
	vm_destroy(ctx.vm);
	loop_destroy(ctx.loop);
	if (sfd >= 0)
		close(sfd);
	log_debug("VM destroyed");
	return code;
}

/* `vmm status|pause|resume|stop --api-sock PATH` */
static int cmd_client(const char *cmd, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "api-sock", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const struct json_value *root, *ret, *error;
	const char *path = NULL, *errmsg = NULL;
	struct json_doc *doc = NULL;
	char *response = NULL;
	int c, code = VM_EXIT_ERROR;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'h':
			printf("Usage: vmm %s --api-sock PATH\n", cmd);
			return 0;
		default:
			log_err("bad option '%s' for 'vmm %s' (usage: vmm %s --api-sock PATH)",
				argv[optind - 1], cmd, cmd);
			return VM_EXIT_USAGE;
		}
	}
	if (!path || optind < argc) {
		log_err("usage: vmm %s --api-sock PATH", cmd);
		return VM_EXIT_USAGE;
	}
	if (api_client_call(path, cmd, &response) < 0)
		return VM_EXIT_ERROR;
	if (json_parse(response, strlen(response), &doc, &errmsg) < 0) {
		log_err("control socket %s: malformed response: %s", path, errmsg);
		goto out;
	}
	root = json_doc_root(doc);
	error = json_object_get(root, "error");
	ret = json_object_get(root, "return");
	if (error) {
		const char *desc = json_get_string(json_object_get(error, "desc"));

		log_err("%s: %s", cmd, desc ? desc : "failed");
		goto out;
	}
	if (!ret) {
		log_err("control socket %s: response has neither return nor error", path);
		goto out;
	}
	if (strcmp(cmd, "status") == 0) {
		struct json_writer w;

		json_writer_init(&w);
		json_write_value(&w, ret);
		if (json_writer_text(&w))
			printf("%s\n", json_writer_text(&w));
		json_writer_free(&w);
	}
	code = 0;
out:
	json_doc_free(doc);
	free(response);
	return code;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : NULL;

	log_mark_start();
	if (!cmd) {
		usage(stderr);
		return VM_EXIT_USAGE;
	}
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("vmm %s\n", VMM_VERSION);
		return 0;
	}
	if (!strcmp(cmd, "run"))
		return cmd_run(argc - 1, argv + 1);
	if (!strcmp(cmd, "checkpoint"))
		return cmd_checkpoint(argc - 1, argv + 1);
	if (!strcmp(cmd, "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(cmd, "inspect"))
		return cmd_inspect(argc - 1, argv + 1);
	if (!strcmp(cmd, "status") || !strcmp(cmd, "pause") || !strcmp(cmd, "resume") ||
	    !strcmp(cmd, "stop"))
		return cmd_client(cmd, argc - 1, argv + 1);
	log_err("unknown command '%s' (see vmm --help)", cmd);
	return VM_EXIT_USAGE;
}
