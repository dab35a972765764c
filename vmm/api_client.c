/* The client half of the control socket, used by `vmm status|pause|...`. */
#include "vmm/api.h"
#include "vmm/log.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* Long enough for a checkpoint of a large guest to a slow disk. */
#define API_CLIENT_TIMEOUT_MS (30 * 60 * 1000)

static int api_client_connect(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		log_err("--api-sock path is longer than %zu bytes", sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		err = -errno;
		log_err("cannot connect to the control socket %s: %s%s", path, strerror(-err),
			err == -ECONNREFUSED || err == -ENOENT ? " (is vmm running?)" : "");
		close(fd);
		return err;
	}
	return fd;
}

static int api_client_read_line(int fd, const char *path, char **response)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *nl;

		if (poll(&pfd, 1, API_CLIENT_TIMEOUT_MS) == 0) {
			log_err("control socket %s: no response within %d s", path,
				API_CLIENT_TIMEOUT_MS / 1000);
			free(buf);
			return -ETIMEDOUT;
		}
		if (len + 1 >= cap) {
			char *p = cap < API_MAX_LINE * 16 ? realloc(buf, cap * 2) : NULL;

			if (!p) {
				log_err("control socket %s: response too long", path);
				free(buf);
				return -E2BIG;
			}
			buf = p;
			cap *= 2;
		}
		n = recv(fd, buf + len, cap - len - 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_err("control socket %s: vmm closed the connection without a response",
				path);
			free(buf);
			return -ECONNRESET;
		}
		len += (size_t)n;
		buf[len] = '\0';
		nl = strchr(buf, '\n');
		if (nl) {
			*nl = '\0';
			*response = buf;
			return 0;
		}
	}
}

int api_client_request_fd(const char *path, const char *line, int pass_fd, char **response)
{
	union {
		struct cmsghdr hdr;
		char buf[CMSG_SPACE(sizeof(int))];
	} control;
	size_t n = strlen(line);
	struct iovec iov[2] = { { (void *)line, n }, { "\n", 1 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	int fd, err;

	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = sizeof(control.buf);
		cm = CMSG_FIRSTHDR(&msg);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	fd = api_client_connect(path);
	if (fd < 0)
		return fd;
	if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)(n + 1)) {
		err = -errno;
		log_err("control socket %s: sending the request: %s", path, strerror(-err));
		close(fd);
		return err;
	}
	err = api_client_read_line(fd, path, response);
	close(fd);
	return err;
}

int api_client_request(const char *path, const char *line, char **response)
{
	return api_client_request_fd(path, line, -1, response);
}

int api_client_call(const char *path, const char *cmd, char **response)
{
	char req[128];
	int n = snprintf(req, sizeof(req), "{\"execute\":\"%s\"}", cmd);

	if (n < 0 || (size_t)n >= sizeof(req))
		return -EINVAL;
	return api_client_request(path, req, response);
}
