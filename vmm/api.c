/* Control-socket server. Runs on the main thread's event loop; a command
 * that pauses the VM blocks the loop only until the vCPUs park. A client
 * that stops reading its responses is dropped rather than block vmm. */
#include "vmm/api.h"
#include "vmm/json.h"
#include "vmm/log.h"
#include "vmm/loop.h"
#include "vmm/vm.h"
#include "snapshot/checkpoint.h"
#include "snapshot/stream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct api_client {
	struct api *api;
	int fd;
	int passed_fd;          /* a descriptor the client sent (SCM_RIGHTS), or -1 */
	size_t len;
	char buf[API_MAX_LINE];
	struct api_client *next;
};

struct api {
	struct vm *vm;
	struct loop *loop;
	int listen_fd;
	char *path;
	unsigned int nclients;
	struct api_client *clients;
	int request_fd;         /* the passed descriptor of the request being run */
	struct timespec started;
};

struct api_cmd {
	const char *name;
	/* Fill the "return" object's members into w, or set *err. */
	int (*run)(struct api *api, const struct api_request *req, struct json_writer *w,
		   const char **err);
};

int api_parse_request(const char *line, size_t len, struct api_request *req, const char **err)
{
	const struct json_value *root, *args;
	int rc;

	memset(req, 0, sizeof(*req));
	rc = json_parse(line, len, &req->doc, err);
	if (rc)
		return rc == -E2BIG ? -EINVAL : rc;
	root = json_doc_root(req->doc);
	if (json_type_of(root) != JSON_OBJECT) {
		*err = "a request must be a JSON object";
		return -EINVAL;
	}
	req->id = json_object_get(root, "id");
	req->execute = json_get_string(json_object_get(root, "execute"));
	if (!req->execute) {
		*err = "a request needs \"execute\": \"<command>\"";
		return -EINVAL;
	}
	args = json_object_get(root, "arguments");
	if (args && json_type_of(args) != JSON_OBJECT) {
		*err = "\"arguments\" must be an object";
		return -EINVAL;
	}
	req->arguments = args;
	for (size_t i = 0; i < json_length(root); i++) {
		const char *key = json_object_key_at(root, i);

		if (strcmp(key, "execute") && strcmp(key, "arguments") && strcmp(key, "id")) {
			*err = "unknown member in request (expected execute, arguments, id)";
			return -EINVAL;
		}
	}
	return 0;
}

void api_request_free(struct api_request *req)
{
	json_doc_free(req->doc);
	req->doc = NULL;
}

static int api_cmd_status(struct api *api, const struct api_request *req,
			  struct json_writer *w, const char **err)
{
	struct vm *vm = api->vm;
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (now.tv_sec - api->started.tv_sec) * 1000 +
	     (now.tv_nsec - api->started.tv_nsec) / 1000000;
	json_write_key(w, "state");
	json_write_string(w, vm_is_paused(vm) ? "paused" : "running");
	json_write_key(w, "vcpus");
	json_write_u64(w, vm->ncpus);
	json_write_key(w, "mem_bytes");
	json_write_u64(w, vm->mem.size);
	json_write_key(w, "kernel");
	json_write_string(w, vm->cfg.kernel);
	json_write_key(w, "pid");
	json_write_i64(w, getpid());
	json_write_key(w, "uptime_ms");
	json_write_i64(w, ms);
	return 0;
}

static int api_cmd_pause(struct api *api, const struct api_request *req,
			 struct json_writer *w, const char **err)
{
	if (vm_pause(api->vm)) {
		*err = "the VM is shutting down";
		return -ESHUTDOWN;
	}
	return 0;
}

static int api_cmd_resume(struct api *api, const struct api_request *req,
			  struct json_writer *w, const char **err)
{
	return vm_resume(api->vm);
}

static int api_cmd_stop(struct api *api, const struct api_request *req,
			struct json_writer *w, const char **err)
{
	vm_request_exit(api->vm, VM_EXIT_OK, "stopped through the control socket");
	return 0;
}

/* {"execute":"checkpoint","arguments":{"out":"/abs/path","then":"resume"|"pause"|"exit",
 *  "overwrite":bool}}: a full checkpoint to a file vmm writes. Synchronous:
 * the control socket waits meanwhile (the live modes of issue #5 run in the
 * background). */
static int api_cmd_checkpoint(struct api *api, const struct api_request *req,
			      struct json_writer *w, const char **err)
{
	static char msg[512];
	const char *out = json_get_string(json_object_get(req->arguments, "out"));
	const char *then = json_get_string(json_object_get(req->arguments, "then"));
	const char *mode = json_get_string(json_object_get(req->arguments, "mode"));
	bool overwrite = false, leave_paused;
	struct checkpoint_result res;
	struct snap_stream *s;
	int r;

	json_get_bool(json_object_get(req->arguments, "overwrite"), &overwrite);
	if (!out || (out[0] != '/' && strcmp(out, "-"))) {
		*err = "checkpoint needs \"out\": an absolute path, or \"-\" with a descriptor passed";
		return -EINVAL;
	}
	if (!strcmp(out, "-") && api->request_fd < 0) {
		*err = "checkpoint to \"-\" needs the client to pass the descriptor to write to";
		return -EINVAL;
	}
	if (mode && strcmp(mode, "full")) {
		*err = "only mode \"full\" is available in this build";
		return -EINVAL;
	}
	if (!then)
		then = "resume";
	if (strcmp(then, "resume") && strcmp(then, "pause") && strcmp(then, "exit")) {
		*err = "\"then\" must be resume, pause or exit";
		return -EINVAL;
	}
	leave_paused = strcmp(then, "resume") != 0;
	if (!strcmp(out, "-")) {
		/* The client's descriptor (a pipe, a socket, its stdout): streamed,
		 * no page alignment, nothing to rename. */
		r = snap_stream_open_fd(api->request_fd, SNAP_STREAM_WRITE, true, &s);
		if (!r)
			api->request_fd = -1;   /* the stream owns it now */
	} else {
		r = snap_stream_create_file(out, overwrite, &s);
	}
	if (r) {
		snprintf(msg, sizeof(msg), "checkpoint: cannot create %s: %s%s", out, strerror(-r),
			 r == -EEXIST ? " (use --force to replace it)" : "");
		*err = msg;
		return r;
	}
	r = checkpoint_full(api->vm, s, strcmp(out, "-") != 0, leave_paused, &res, msg,
			    sizeof(msg));
	if (r) {
		snap_stream_close(s);   /* the temporary file disappears */
		log_err("%s", msg);
		*err = msg;
		return r;
	}
	r = snap_stream_commit(s);
	if (r) {
		if (!leave_paused)
			log_warn("checkpoint to %s failed; the guest runs on", out);
		snprintf(msg, sizeof(msg), "checkpoint: committing %s: %s", out, strerror(-r));
		log_err("%s", msg);
		*err = msg;
		return r;
	}
	json_write_key(w, "file");
	json_write_string(w, out);
	json_write_key(w, "bytes");
	json_write_u64(w, res.bytes);
	json_write_key(w, "seconds");
	json_write_double(w, res.secs);
	json_write_key(w, "pause_ms");
	json_write_double(w, res.pause_ms);
	json_write_key(w, "ram_pages");
	json_write_u64(w, res.ram.pages_data);
	json_write_key(w, "zero_pages");
	json_write_u64(w, res.ram.pages_zero);
	if (!strcmp(then, "exit"))
		vm_request_exit(api->vm, VM_EXIT_OK, "checkpointed to %s, then stopped", out);
	return 0;
}

static const struct api_cmd api_cmds[] = {
	{ "checkpoint", api_cmd_checkpoint },
	{ "status", api_cmd_status },
	{ "pause", api_cmd_pause },
	{ "resume", api_cmd_resume },
	{ "stop", api_cmd_stop },
};

static void api_write_error(struct json_writer *w, const char *class, const char *desc,
			    const struct json_value *id)
{
	json_write_object_begin(w);
	json_write_key(w, "error");
	json_write_object_begin(w);
	json_write_key(w, "class");
	json_write_string(w, class);
	json_write_key(w, "desc");
	json_write_string(w, desc);
	json_write_object_end(w);
	if (id) {
		json_write_key(w, "id");
		json_write_value(w, id);
	}
	json_write_object_end(w);
}

/* Build the response line for one request line. */
static void api_handle_line(struct api *api, const char *line, size_t len,
			    struct json_writer *w)
{
	const struct api_cmd *cmd = NULL;
	struct api_request req;
	const char *err = NULL;
	char desc[160];

	if (api_parse_request(line, len, &req, &err)) {
		snprintf(desc, sizeof(desc), "bad request: %s", err ? err : "invalid JSON");
		api_write_error(w, "GenericError", desc, req.id);
		api_request_free(&req);
		return;
	}
	for (size_t i = 0; i < sizeof(api_cmds) / sizeof(api_cmds[0]); i++)
		if (strcmp(api_cmds[i].name, req.execute) == 0)
			cmd = &api_cmds[i];
	if (!cmd) {
		snprintf(desc, sizeof(desc), "unknown command '%.64s'", req.execute);
		api_write_error(w, "CommandNotFound", desc, req.id);
		api_request_free(&req);
		return;
	}
	/* The command writes the members of "return" into a writer of its own,
	 * so a failure halfway leaves nothing half-written in the response. */
	{
		struct json_writer ret;

		json_writer_init(&ret);
		json_write_object_begin(&ret);
		json_write_key(&ret, "return");
		json_write_object_begin(&ret);
		if (cmd->run(api, &req, &ret, &err) < 0) {
			api_write_error(w, "GenericError", err ? err : "command failed", req.id);
		} else {
			json_write_object_end(&ret);
			if (req.id) {
				json_write_key(&ret, "id");
				json_write_value(&ret, req.id);
			}
			json_write_object_end(&ret);
			if (json_writer_text(&ret)) {
				json_writer_free(w);
				*w = ret;
				ret = (struct json_writer){ 0 };
			}
		}
		json_writer_free(&ret);
	}
	api_request_free(&req);
}

static void api_client_close(struct api_client *c)
{
	struct api *api = c->api;
	struct api_client **pp;

	for (pp = &api->clients; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	loop_del(api->loop, c->fd);
	close(c->fd);
	if (c->passed_fd >= 0)
		close(c->passed_fd);
	api->nclients--;
	free(c);
}

/* Returns false if the client had to be dropped. */
static bool api_send_line(int fd, const char *text)
{
	size_t len = strlen(text);
	struct iovec iov[2] = { { (void *)text, len }, { "\n", 1 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	ssize_t n;

	do
		n = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	return n == (ssize_t)(len + 1);
}

static bool api_client_respond(struct api_client *c, const char *line, size_t len)
{
	struct json_writer w;
	const char *text;
	bool ok;

	json_writer_init(&w);
	c->api->request_fd = c->passed_fd;
	api_handle_line(c->api, line, len, &w);
	/* A descriptor goes with one request: consumed, or closed now. */
	if (c->api->request_fd >= 0)
		close(c->api->request_fd);
	c->api->request_fd = -1;
	c->passed_fd = -1;
	text = json_writer_text(&w);
	ok = text && api_send_line(c->fd, text);
	json_writer_free(&w);
	return ok;
}

static void api_client_input(void *opaque, int fd, uint32_t events)
{
	struct api_client *c = opaque;
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	struct iovec iov = { c->buf + c->len, sizeof(c->buf) - c->len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = control.buf, .msg_controllen = sizeof(control.buf) };
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	size_t start = 0;

	/* One descriptor may ride with a request (checkpoint --out -). */
	for (struct cmsghdr *cm = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; cm;
	     cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int))) {
			if (c->passed_fd >= 0)
				close(c->passed_fd);
			memcpy(&c->passed_fd, CMSG_DATA(cm), sizeof(int));
		}
	}
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {
		api_client_close(c);
		return;
	}
	c->len += (size_t)n;
	for (size_t i = 0; i < c->len; i++) {
		if (c->buf[i] != '\n')
			continue;
		if (i > start && !api_client_respond(c, c->buf + start, i - start)) {
			api_client_close(c);
			return;
		}
		start = i + 1;
	}
	memmove(c->buf, c->buf + start, c->len - start);
	c->len -= start;
	if (c->len == sizeof(c->buf)) {
		api_send_line(fd, "{\"error\":{\"class\":\"GenericError\","
			      "\"desc\":\"request line longer than 65536 bytes\"}}");
		api_client_close(c);
	}
}

static void api_accept(void *opaque, int fd, uint32_t events)
{
	struct api *api = opaque;
	struct api_client *c;
	int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (cfd < 0)
		return;
	if (api->nclients >= API_MAX_CLIENTS) {
		api_send_line(cfd, "{\"error\":{\"class\":\"GenericError\","
			      "\"desc\":\"too many control-socket clients\"}}");
		close(cfd);
		return;
	}
	c = malloc(sizeof(*c));
	if (!c || loop_add(api->loop, cfd, EPOLLIN, api_client_input, c) < 0) {
		free(c);
		close(cfd);
		return;
	}
	c->api = api;
	c->fd = cfd;
	c->passed_fd = -1;
	c->len = 0;
	c->next = api->clients;
	api->clients = c;
	api->nclients++;
}

/* A stale socket file from a vmm that died is replaced; a live one is not. */
static int api_check_path(const char *path, const struct sockaddr_un *addr)
{
	struct stat st;
	int fd;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_err("--api-sock %s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) == 0) {
		close(fd);
		log_err("--api-sock %s is in use by another running vmm", path);
		return -EADDRINUSE;
	}
	if (fd >= 0)
		close(fd);
	unlink(path);
	return 0;
}

int api_create(struct vm *vm, struct loop *loop, const char *path, struct api **out)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct api *api;
	mode_t old_umask;
	int err;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("--api-sock path is longer than %zu bytes", sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	err = api_check_path(path, &addr);
	if (err)
		return err;
	api = calloc(1, sizeof(*api));
	if (!api)
		return -ENOMEM;
	api->vm = vm;
	api->loop = loop;
	api->listen_fd = -1;
	api->request_fd = -1;
	clock_gettime(CLOCK_MONOTONIC, &api->started);
	api->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (api->listen_fd < 0)
		goto fail;
	/* Mode 0600 from the start: no window where others could connect. */
	old_umask = umask(0177);
	err = bind(api->listen_fd, (struct sockaddr *)&addr, sizeof(addr));
	umask(old_umask);
	if (err < 0 || listen(api->listen_fd, 64) < 0)
		goto fail;
	api->path = strdup(path);
	if (!api->path)
		goto fail;
	err = loop_add(loop, api->listen_fd, EPOLLIN, api_accept, api);
	if (err) {
		errno = -err;
		goto fail;
	}
	*out = api;
	return 0;
fail:
	err = -errno;
	log_err("--api-sock %s: %s", path, strerror(-err));
	api_destroy(api);
	return err;
}

void api_destroy(struct api *api)
{
	if (!api)
		return;
	while (api->clients)
		api_client_close(api->clients);
	if (api->listen_fd >= 0) {
		loop_del(api->loop, api->listen_fd);
		close(api->listen_fd);
	}
	if (api->path)
		unlink(api->path);
	free(api->path);
	free(api);
}
