/* Control-socket request parsing (the untrusted half of the protocol). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "vmm/api.h"
#include "vmm/json.h"

#include <errno.h>
#include <string.h>

static int parse(const char *line, struct api_request *req, const char **err)
{
	*err = NULL;
	return api_parse_request(line, strlen(line), req, err);
}

static void test_valid_requests(void **state)
{
	struct api_request req;
	const char *err;
	int64_t id;

	assert_int_equal(parse("{\"execute\":\"status\"}", &req, &err), 0);
	assert_string_equal(req.execute, "status");
	assert_null(req.arguments);
	assert_null(req.id);
	api_request_free(&req);

	assert_int_equal(parse(" {\"id\": 42, \"execute\": \"pause\", \"arguments\": {}} ",
			       &req, &err), 0);
	assert_string_equal(req.execute, "pause");
	assert_non_null(req.arguments);
	assert_true(json_get_i64(req.id, &id));
	assert_int_equal(id, 42);
	api_request_free(&req);
}

static void test_bad_requests(void **state)
{
	static const char *const bad[] = {
		"", "{", "not json", "[]", "\"status\"", "{}", "{\"execute\":1}",
		"{\"execute\":\"status\",\"arguments\":[]}",
		"{\"execute\":\"status\",\"extra\":true}",
		"{\"execute\":\"status\"} {\"execute\":\"stop\"}",
		"{\"execute\":\"a\",\"execute\":\"b\"}",
	};
	struct api_request req;
	const char *err;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(bad[i], &req, &err), -EINVAL);
		assert_non_null(err);
		api_request_free(&req);
	}
	/* An id survives a bad request, so the error can carry it back. */
	assert_int_equal(parse("{\"id\":\"x\"}", &req, &err), -EINVAL);
	assert_string_equal(json_get_string(req.id), "x");
	api_request_free(&req);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_requests),
		cmocka_unit_test(test_bad_requests),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
