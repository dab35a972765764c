/* The control socket: JSON, one object per line, in the spirit of QMP.
 *   request  {"execute": "status", "arguments": {...}, "id": any}
 *   response {"return": {...}, "id": any} or
 *            {"error": {"class": "...", "desc": "..."}, "id": any}
 * docs/cli.md lists the commands. */
#ifndef VMM_API_H
#define VMM_API_H

#include <stddef.h>

struct api;
struct json_doc;
struct json_value;
struct loop;
struct vm;

#define API_MAX_LINE    65536   /* bytes per request line, newline included */
#define API_MAX_CLIENTS 128

struct api_request {
	struct json_doc *doc;
	const char *execute;
	const struct json_value *arguments;  /* object or NULL */
	const struct json_value *id;         /* any value or NULL */
};

/* Parse one request line. 0, or -EINVAL with *err describing the problem
 * (and req->id set when the line was an object carrying one). */
int api_parse_request(const char *line, size_t len, struct api_request *req, const char **err);
void api_request_free(struct api_request *req);

/* Listen on path (mode 0600); refuses a path a live vmm is using. */
int api_create(struct vm *vm, struct loop *loop, const char *path, struct api **out);
void api_destroy(struct api *api);

/* Client side: send {"execute": cmd}, wait for the response line.
 * Returns 0 and a malloc'ed *response, or -errno after logging why. */
int api_client_call(const char *path, const char *cmd, char **response);
/* The same with a whole request line (no newline). */
int api_client_request(const char *path, const char *line, char **response);
/* ... passing descriptor pass_fd along with it (SCM_RIGHTS), if >= 0. */
int api_client_request_fd(const char *path, const char *line, int pass_fd, char **response);

#endif
