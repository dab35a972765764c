/* Unit tests for vmm/json.c: the parser as a security boundary (every error
 * class, every truncation, limits) and the writer (escaping, misuse,
 * round trips).  Inputs are copied into exact-size heap buffers so a
 * sanitizer build catches any read past len. */
#include <errno.h>
#include <float.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "vmm/json.h"

#define UNUSED __attribute__((unused))

/* Parse s[0..len) from an exact-size copy (not NUL-terminated). */
static int parse_n(const char *s, size_t len, struct json_doc **doc, const char **msg)
{
	char *copy = malloc(len ? len : 1);
	int err;

	assert_non_null(copy);
	memcpy(copy, s, len);
	err = json_parse(copy, len, doc, msg);
	free(copy);
	return err;
}

static struct json_doc *parse_ok(const char *s)
{
	struct json_doc *doc = NULL;
	const char *msg = NULL;
	int err = parse_n(s, strlen(s), &doc, &msg);

	if (err)
		fail_msg("parse of '%s' failed: %d %s", s, err, msg ? msg : "");
	assert_non_null(doc);
	return doc;
}

/* Expects failure with err; returns the message. */
static const char *parse_fail(const char *s, size_t len, int err)
{
	struct json_doc *doc = (struct json_doc *)1;
	const char *msg = NULL;
	int got = parse_n(s, len, &doc, &msg);

	if (got != err)
		fail_msg("parse of '%.*s' gave %d, want %d", (int)(len > 80 ? 80 : len), s, got, err);
	assert_null(doc);
	assert_non_null(msg);
	return msg;
}

static void parse_bad(const char *s)
{
	parse_fail(s, strlen(s), -EINVAL);
}

static void test_scalars(void **state UNUSED)
{
	struct json_doc *doc;
	bool b = false;

	doc = parse_ok(" \t\r\nnull \n");
	assert_int_equal(json_type_of(json_doc_root(doc)), JSON_NULL);
	assert_non_null(json_doc_root(doc));
	json_doc_free(doc);

	doc = parse_ok("true");
	assert_true(json_get_bool(json_doc_root(doc), &b));
	assert_true(b);
	json_doc_free(doc);
	doc = parse_ok("false");
	assert_true(json_get_bool(json_doc_root(doc), &b));
	assert_false(b);
	assert_null(json_get_string(json_doc_root(doc)));
	json_doc_free(doc);

	doc = parse_ok("\"hi\"");
	assert_string_equal(json_get_string(json_doc_root(doc)), "hi");
	assert_false(json_get_bool(json_doc_root(doc), &b));
	assert_int_equal(json_length(json_doc_root(doc)), 0);
	json_doc_free(doc);

	parse_bad("tru");
	parse_bad("nul");
	parse_bad("True");
	parse_bad("nulll");
	parse_bad("'x'");
	parse_bad("undefined");
}

struct num_case {
	const char *text;
	double d;
	bool has_i, has_u;
	int64_t i;
	uint64_t u;
};

static void test_numbers(void **state UNUSED)
{
	static const struct num_case cases[] = {
		{ "0", 0, true, true, 0, 0 },
		{ "-0", -0.0, true, true, 0, 0 },
		{ "123", 123, true, true, 123, 123 },
		{ "-1", -1, true, false, -1, 0 },
		{ "9223372036854775807", 9223372036854775807.0, true, true, INT64_MAX, INT64_MAX },
		{ "-9223372036854775808", -9223372036854775808.0, true, false, INT64_MIN, 0 },
		{ "-9223372036854775809", -9223372036854775809.0, false, false, 0, 0 },
		{ "9223372036854775808", 9223372036854775808.0, false, true, 0, 9223372036854775808ull },
		{ "18446744073709551615", 18446744073709551615.0, false, true, 0, UINT64_MAX },
		{ "18446744073709551616", 18446744073709551616.0, false, false, 0, 0 },
		{ "1.5", 1.5, false, false, 0, 0 },
		{ "7.0", 7, true, true, 7, 7 },
		{ "1e2", 100, true, true, 100, 100 },
		{ "1E+2", 100, true, true, 100, 100 },
		{ "1.25e2", 125, true, true, 125, 125 },
		{ "12500e-2", 125, true, true, 125, 125 },
		{ "1.5e1", 15, true, true, 15, 15 },
		{ "1e-1", 0.1, false, false, 0, 0 },
		{ "1e19", 1e19, false, true, 0, 10000000000000000000ull },
		{ "1e20", 1e20, false, false, 0, 0 },
		{ "0.000e99999999999999", 0, true, true, 0, 0 },
		{ "1e-400", 0, false, false, 0, 0 },
		{ "-2.5E-3", -2.5e-3, false, false, 0, 0 },
		{ "1.7976931348623157e308", DBL_MAX, false, false, 0, 0 },
		{ "9007199254740993", 9007199254740992.0, true, true, 9007199254740993, 9007199254740993 },
		{ "100000000000000000000000000000e-10", 1e19, false, true, 0, 10000000000000000000ull },
	};
	size_t k;

	for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		const struct num_case *c = &cases[k];
		struct json_doc *doc = parse_ok(c->text);
		const struct json_value *v = json_doc_root(doc);
		double d = NAN;
		int64_t i = 42;
		uint64_t u = 42;

		assert_int_equal(json_type_of(v), JSON_NUMBER);
		assert_true(json_get_double(v, &d));
		if (d != c->d || signbit(d) != signbit(c->d))
			fail_msg("%s: double %.17g want %.17g", c->text, d, c->d);
		if (json_get_i64(v, &i) != c->has_i || (c->has_i && i != c->i))
			fail_msg("%s: i64 wrong (%lld)", c->text, (long long)i);
		if (json_get_u64(v, &u) != c->has_u || (c->has_u && u != c->u))
			fail_msg("%s: u64 wrong (%llu)", c->text, (unsigned long long)u);
		json_doc_free(doc);
	}
}

static void test_bad_numbers(void **state UNUSED)
{
	static const char *const bad[] = {
		"01", "00", "-01", "-", "1.", ".5", "+1", "1e", "1e+", "1e-", "--1",
		"0x10", "1.e5", "NaN", "nan", "Infinity", "-Infinity", "1 2", "1.5.2",
		"1e5e5", "- 1", "1e400", "-1e400", "[01]", "{\"a\":1.}", "\xef\xbc\x91",
	};
	char big[JSON_MAX_NUMBER + 2];
	size_t k;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		parse_bad(bad[k]);
	memset(big, '1', sizeof(big) - 1);	/* "0.111...": in range, too long */
	big[0] = '0';
	big[1] = '.';
	big[sizeof(big) - 1] = '\0';
	parse_fail(big, strlen(big), -E2BIG);
	big[JSON_MAX_NUMBER] = '\0';
	json_doc_free(parse_ok(big));
}

static void check_string(const char *json, const char *want)
{
	struct json_doc *doc = parse_ok(json);

	assert_string_equal(json_get_string(json_doc_root(doc)), want);
	json_doc_free(doc);
}

static void test_strings(void **state UNUSED)
{
	check_string("\"\"", "");
	check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t");
	check_string("\"\\u0041\\u00e9\\u00E9\"", "A\xc3\xa9\xc3\xa9");
	check_string("\"\\u20ac\"", "\xe2\x82\xac");
	check_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80");
	check_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf");
	check_string("\"\\u0001\\u001f\"", "\x01\x1f");
	check_string("\"\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa9 \x7f\"", "\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa9 \x7f");
	check_string("\"\xef\xbf\xbf\xf4\x8f\xbf\xbf\"", "\xef\xbf\xbf\xf4\x8f\xbf\xbf");

	parse_bad("\"\\ud800\"");		/* lone high */
	parse_bad("\"\\udc00\"");		/* lone low */
	parse_bad("\"\\ude00\\ud83d\"");	/* reversed pair */
	parse_bad("\"\\ud800\\u0041\"");
	parse_bad("\"\\ud800x\"");
	parse_bad("\"\\ud800\\\"");
	parse_bad("\"\\ud800\\ud800\"");
	parse_bad("\"\\u0000\"");
	parse_bad("\"\\x41\"");
	parse_bad("\"\\'\"");
	parse_bad("\"\\U0041\"");
	parse_bad("\"\\u12G4\"");
	parse_bad("\"\\u12\"");
	parse_bad("\"\\u\"");
	parse_bad("\"\\\"");
	parse_bad("\"abc");
	parse_bad("\"\t\"");
	parse_bad("\"\n\"");
	parse_bad("\"\x1f\"");
	parse_fail("\"a\0b\"", 5, -EINVAL);	/* raw NUL */
}

static void test_bad_utf8(void **state UNUSED)
{
	static const char *const bad[] = {
		"\"\xc0\x80\"",			/* overlong NUL */
		"\"\xc1\xbf\"",			/* overlong */
		"\"\xe0\x80\x80\"",		/* overlong 3-byte */
		"\"\xe0\x9f\xbf\"",
		"\"\xf0\x80\x80\x80\"",		/* overlong 4-byte */
		"\"\xf0\x8f\xbf\xbf\"",
		"\"\xed\xa0\x80\"",		/* UTF-16 surrogate D800 */
		"\"\xed\xbf\xbf\"",
		"\"\xf4\x90\x80\x80\"",		/* above U+10FFFF */
		"\"\xf5\x80\x80\x80\"",
		"\"\xf8\x88\x80\x80\x80\"",
		"\"\xff\"", "\"\xfe\"",
		"\"\x80\"",			/* lone continuation */
		"\"\xbf\"",
		"\"\xe2\x82\"",			/* truncated */
		"\"\xe2\x82",
		"\"\xf0\x9f\x98\"",
		"\"\xc3\"",
		"\"\xc3\x28\"",			/* bad continuation */
		"{\"\xc3\":1}",
		"\xef\xbb\xbf{}",		/* BOM */
	};
	size_t k;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		parse_bad(bad[k]);
}

static void test_containers(void **state UNUSED)
{
	struct json_doc *doc = parse_ok(
		" { \"a\" : [ 1 , 2.5 , \"x\" , true , null , [ ] , { } ] ,"
		" \"b\" : { \"c\" : { \"d\" : [ [ [ ] ] ] } } , \"\" : 0 } ");
	const struct json_value *root = json_doc_root(doc), *a, *v;
	double d;
	int64_t i;

	assert_int_equal(json_type_of(root), JSON_OBJECT);
	assert_int_equal(json_length(root), 3);
	assert_string_equal(json_object_key_at(root, 0), "a");
	assert_string_equal(json_object_key_at(root, 1), "b");
	assert_string_equal(json_object_key_at(root, 2), "");
	assert_null(json_object_key_at(root, 3));
	assert_null(json_object_value_at(root, 3));
	assert_ptr_equal(json_object_value_at(root, 0), json_object_get(root, "a"));
	assert_non_null(json_object_get(root, ""));
	assert_null(json_object_get(root, "z"));
	assert_null(json_object_get(root, "ab"));
	assert_null(json_array_at(root, 0));

	a = json_object_get(root, "a");
	assert_int_equal(json_type_of(a), JSON_ARRAY);
	assert_int_equal(json_length(a), 7);
	assert_true(json_get_i64(json_array_at(a, 0), &i));
	assert_int_equal(i, 1);
	assert_true(json_get_double(json_array_at(a, 1), &d));
	assert_true(d == 2.5);
	assert_string_equal(json_get_string(json_array_at(a, 2)), "x");
	assert_int_equal(json_type_of(json_array_at(a, 3)), JSON_BOOL);
	assert_int_equal(json_type_of(json_array_at(a, 4)), JSON_NULL);
	assert_non_null(json_array_at(a, 4));
	assert_int_equal(json_type_of(json_array_at(a, 5)), JSON_ARRAY);
	assert_int_equal(json_length(json_array_at(a, 5)), 0);
	assert_int_equal(json_type_of(json_array_at(a, 6)), JSON_OBJECT);
	assert_int_equal(json_length(json_array_at(a, 6)), 0);
	assert_null(json_array_at(a, 7));
	assert_null(json_object_get(a, "a"));
	assert_null(json_object_key_at(a, 0));

	v = json_object_get(json_object_get(json_object_get(root, "b"), "c"), "d");
	assert_int_equal(json_length(json_array_at(json_array_at(v, 0), 0)), 0);

	/* NULL-safe chaining */
	assert_null(json_object_get(json_object_get(root, "nope"), "x"));
	assert_null(json_get_string(NULL));
	assert_int_equal(json_type_of(NULL), JSON_NULL);
	assert_int_equal(json_length(NULL), 0);
	assert_false(json_get_i64(NULL, &i));
	assert_null(json_doc_root(NULL));
	json_doc_free(NULL);
	json_doc_free(doc);
}

static void test_qmp_shapes(void **state UNUSED)
{
	struct json_doc *doc;
	const struct json_value *root, *args;
	int64_t id;
	uint64_t u;

	doc = parse_ok("{\"execute\":\"status\"}");
	root = json_doc_root(doc);
	assert_string_equal(json_get_string(json_object_get(root, "execute")), "status");
	assert_null(json_object_get(root, "arguments"));
	json_doc_free(doc);

	doc = parse_ok("{\"execute\":\"checkpoint\",\"arguments\":{\"out\":\"/tmp/x\",\"mode\":\"live\"},\"id\":7}\n");
	root = json_doc_root(doc);
	args = json_object_get(root, "arguments");
	assert_string_equal(json_get_string(json_object_get(root, "execute")), "checkpoint");
	assert_string_equal(json_get_string(json_object_get(args, "out")), "/tmp/x");
	assert_string_equal(json_get_string(json_object_get(args, "mode")), "live");
	assert_true(json_get_i64(json_object_get(root, "id"), &id));
	assert_int_equal(id, 7);
	json_doc_free(doc);

	doc = parse_ok("{\"return\":{\"state\":\"running\",\"dirty-pages\":123456}}");
	root = json_doc_root(doc);
	assert_true(json_get_u64(json_object_get(json_object_get(root, "return"), "dirty-pages"), &u));
	assert_int_equal(u, 123456);
	json_doc_free(doc);

	doc = parse_ok("{\"error\":{\"class\":\"GenericError\",\"desc\":\"no such command\"},\"id\":\"abc\"}");
	root = json_doc_root(doc);
	assert_string_equal(json_get_string(json_object_get(json_object_get(root, "error"), "class")),
			    "GenericError");
	json_doc_free(doc);

	doc = parse_ok("{\"event\":\"checkpoint-progress\",\"data\":{\"round\":3,\"remaining\":1.5e6}}");
	root = json_doc_root(doc);
	assert_string_equal(json_get_string(json_object_get(root, "event")), "checkpoint-progress");
	assert_true(json_get_u64(json_object_get(json_object_get(root, "data"), "remaining"), &u));
	assert_int_equal(u, 1500000);
	json_doc_free(doc);
}

static void test_syntax_errors(void **state UNUSED)
{
	static const char *const bad[] = {
		"", " ", "\n\t ", "[", "]", "{", "}", "[1,]", "[,1]", "[1 2]", "[1,,2]",
		"{,}", "{\"a\":1,}", "{\"a\" 1}", "{\"a\":}", "{a:1}", "{'a':1}", "{1:1}",
		"{\"a\":1 \"b\":2}", "{\"a\"}", "[1}", "{\"a\":1]", "/* c */ 1", "1 // c",
		"[1] x", "{}{}", "[][]", "1 2", "\"a\" \"b\"", "[1]]", "\x00", "[\x0b]",
		"\f1", "[1]\x0c", ":", ",", "nulltrue",
	};
	size_t k, pos = 99;
	const char *msg;
	struct json_doc *doc;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		parse_bad(bad[k]);
	parse_fail("\0", 1, -EINVAL);
	parse_fail("[1]\0", 4, -EINVAL);

	assert_int_equal(json_parse_errpos("[1, 2,, 3]", 10, &doc, &msg, &pos), -EINVAL);
	assert_int_equal(pos, 6);
	assert_non_null(msg);
	assert_int_equal(json_parse_errpos("{\"a\":1} x", 9, &doc, &msg, &pos), -EINVAL);
	assert_int_equal(pos, 8);
	assert_string_equal(msg, "trailing characters after value");

	/* bad arguments */
	assert_int_equal(json_parse(NULL, 3, &doc, NULL), -EINVAL);
	assert_int_equal(json_parse("1", 1, NULL, NULL), -EINVAL);
}

static void test_not_nul_terminated(void **state UNUSED)
{
	struct json_doc *doc = NULL;
	const char *text = "[1]garbage";
	const char *num = "1234";

	assert_int_equal(json_parse(text, 3, &doc, NULL), 0);
	assert_int_equal(json_length(json_doc_root(doc)), 1);
	json_doc_free(doc);
	assert_int_equal(parse_n(num, 2, &doc, NULL), 0);	/* "12" */
	json_doc_free(doc);
}

/* Every proper prefix of a container document is invalid: must fail with
 * -EINVAL, and (under ASan) never read past the prefix. */
static void test_truncation(void **state UNUSED)
{
	static const char *const docs[] = {
		"{\"execute\":\"checkpoint\",\"arguments\":{\"out\":\"/tmp/x\",\"mode\":\"live\"},\"id\":7}",
		"[1, -2.5e+3, 0, true, false, null, \"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\", {}, [], {\"k\": [{}]}]",
		"{\"s\":\"\xf0\x9f\x98\x80\xe2\x82\xac\xc3\xa9\",\"n\":-0.0e-0}",
		" [ \"x\" ] ",
	};
	size_t k, n;

	for (k = 0; k < sizeof(docs) / sizeof(docs[0]); k++) {
		size_t len = strlen(docs[k]);
		size_t full = len;

		while (full > 0 && docs[k][full - 1] == ' ')
			full--;
		for (n = 0; n < full; n++)
			parse_fail(docs[k], n, -EINVAL);
		for (n = full; n <= len; n++) {
			struct json_doc *doc = NULL;

			assert_int_equal(parse_n(docs[k], n, &doc, NULL), 0);
			json_doc_free(doc);
		}
	}
}

/* "[[[...1...]]]" with depth brackets; caller frees. */
static char *nested(const char *open, const char *close, unsigned depth, size_t *len)
{
	size_t lo = strlen(open), lc = strlen(close), n = depth * (lo + lc) + 1, i;
	char *s = malloc(n + 1), *p = s;

	assert_non_null(s);
	for (i = 0; i < depth; i++, p += lo)
		memcpy(p, open, lo);
	*p++ = '1';
	for (i = 0; i < depth; i++, p += lc)
		memcpy(p, close, lc);
	*p = '\0';
	*len = n;
	return s;
}

static void test_depth(void **state UNUSED)
{
	struct json_doc *doc;
	size_t len;
	char *s;

	s = nested("[", "]", JSON_MAX_DEPTH, &len);
	assert_int_equal(parse_n(s, len, &doc, NULL), 0);
	json_doc_free(doc);
	free(s);
	s = nested("[", "]", JSON_MAX_DEPTH + 1, &len);
	assert_string_equal(parse_fail(s, len, -E2BIG), "nesting too deep");
	free(s);
	s = nested("{\"a\":", "}", JSON_MAX_DEPTH, &len);
	assert_int_equal(parse_n(s, len, &doc, NULL), 0);
	json_doc_free(doc);
	free(s);
	s = nested("{\"a\":", "}", JSON_MAX_DEPTH + 1, &len);
	parse_fail(s, len, -E2BIG);
	free(s);
	s = nested("[", "]", 200000, &len);	/* hostile: no stack blow-up */
	parse_fail(s, len, -E2BIG);
	free(s);
	s = nested("[", "", 200000, &len);
	parse_fail(s, len, -E2BIG);
	free(s);
}

/* An array of n numbers: n + 1 values. */
static char *array_of(size_t n, size_t *len)
{
	char *s = malloc(2 * n + 3), *p = s;
	size_t i;

	assert_non_null(s);
	*p++ = '[';
	for (i = 0; i < n; i++) {
		*p++ = '0';
		*p++ = ',';
	}
	if (n)
		p--;
	*p++ = ']';
	*p = '\0';
	*len = (size_t)(p - s);
	return s;
}

static void test_limits(void **state UNUSED)
{
	struct json_doc *doc;
	size_t len;
	char *s;

	s = array_of(JSON_MAX_VALUES - 1, &len);
	assert_int_equal(parse_n(s, len, &doc, NULL), 0);
	assert_int_equal(json_length(json_doc_root(doc)), JSON_MAX_VALUES - 1);
	json_doc_free(doc);
	free(s);
	s = array_of(JSON_MAX_VALUES, &len);
	assert_string_equal(parse_fail(s, len, -E2BIG), "too many values");
	free(s);

	/* text size: whitespace padding up to and past the limit */
	s = malloc(JSON_MAX_TEXT + 1);
	assert_non_null(s);
	memset(s, ' ', JSON_MAX_TEXT + 1);
	s[0] = '1';
	assert_int_equal(json_parse(s, JSON_MAX_TEXT, &doc, NULL), 0);
	json_doc_free(doc);
	assert_int_equal(json_parse(s, JSON_MAX_TEXT + 1, &doc, NULL), -E2BIG);
	assert_null(doc);
	/* one string of almost 1 MiB */
	s[0] = '"';
	memset(s + 1, 'x', JSON_MAX_TEXT - 2);
	s[JSON_MAX_TEXT - 1] = '"';
	assert_int_equal(json_parse(s, JSON_MAX_TEXT, &doc, NULL), 0);
	assert_int_equal(strlen(json_get_string(json_doc_root(doc))), JSON_MAX_TEXT - 2);
	json_doc_free(doc);
	free(s);
}

static void test_duplicate_keys(void **state UNUSED)
{
	static const char *const bad[] = {
		"{\"a\":1,\"a\":2}",
		"{\"a\":1,\"b\":2,\"a\":1}",
		"{\"x\":{\"a\":1,\"a\":2}}",
		"[{\"a\":1,\"a\":{}}]",
		"{\"a\":1,\"\\u0061\":2}",
		"{\"\":1,\"\":2}",
		"{\"\xc3\xa9\":1,\"\\u00e9\":2}",
	};
	char buf[64 * 1024], *p = buf;
	struct json_doc *doc;
	size_t k;
	int i;

	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_string_equal(parse_fail(bad[k], strlen(bad[k]), -EINVAL), "duplicate key");
	/* same key in different objects is fine; so are prefixes */
	json_doc_free(parse_ok("[{\"a\":1},{\"a\":2},{\"a\":1,\"aa\":2,\"b\":{\"a\":3}}]"));

	/* many distinct keys, then one duplicate */
	*p++ = '{';
	for (i = 0; i < 2000; i++)
		p += sprintf(p, "\"k%d\":%d,", i, i);
	p[-1] = '}';
	*p = '\0';
	doc = parse_ok(buf);
	assert_int_equal(json_length(json_doc_root(doc)), 2000);
	assert_string_equal(json_object_key_at(json_doc_root(doc), 1234), "k1234");
	json_doc_free(doc);
	p[-1] = ',';
	p += sprintf(p, "\"k1999\":0}");
	parse_fail(buf, strlen(buf), -EINVAL);
}

static void test_writer_basic(void **state UNUSED)
{
	struct json_writer w;

	json_writer_init(&w);
	json_write_object_begin(&w);
	json_write_key(&w, "return");
	json_write_object_begin(&w);
	json_write_key(&w, "state");
	json_write_string(&w, "running");
	json_write_key(&w, "n");
	json_write_i64(&w, INT64_MIN);
	json_write_key(&w, "u");
	json_write_u64(&w, UINT64_MAX);
	json_write_key(&w, "list");
	json_write_array_begin(&w);
	json_write_bool(&w, true);
	json_write_bool(&w, false);
	json_write_null(&w);
	json_write_double(&w, 0.1);
	json_write_double(&w, NAN);
	json_write_double(&w, -INFINITY);
	json_write_double(&w, 1e300);
	json_write_double(&w, -0.0);
	json_write_array_begin(&w);
	json_write_array_end(&w);
	json_write_object_begin(&w);
	json_write_object_end(&w);
	json_write_string(&w, NULL);
	json_write_array_end(&w);
	json_write_object_end(&w);
	json_write_key(&w, "id");
	json_write_i64(&w, 7);
	json_write_object_end(&w);
	assert_string_equal(json_writer_text(&w),
		"{\"return\":{\"state\":\"running\",\"n\":-9223372036854775808,"
		"\"u\":18446744073709551615,\"list\":[true,false,null,0.1,null,null,"
		"1e+300,-0,[],{},null]},\"id\":7}");
	assert_int_equal(w.err, 0);
	json_writer_free(&w);

	json_writer_init(&w);
	json_write_i64(&w, -5);
	assert_string_equal(json_writer_text(&w), "-5");
	json_writer_free(&w);
	assert_null(w.buf);
}

static void check_escaped(const char *in, const char *want)
{
	struct json_writer w;

	json_writer_init(&w);
	json_write_string(&w, in);
	assert_string_equal(json_writer_text(&w), want);
	json_writer_free(&w);
}

static void test_writer_escaping(void **state UNUSED)
{
	check_escaped("", "\"\"");
	check_escaped("a\"b\\c/d", "\"a\\\"b\\\\c/d\"");
	check_escaped("\b\f\n\r\t", "\"\\b\\f\\n\\r\\t\"");
	check_escaped("\x01\x1f\x7f", "\"\\u0001\\u001f\x7f\"");
	check_escaped("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
	check_escaped("a\xff" "b", "\"a\xef\xbf\xbd" "b\"");
	check_escaped("\xc0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	check_escaped("\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
	check_escaped("\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\"");
	check_escaped("\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"");
}

static void test_writer_misuse(void **state UNUSED)
{
	struct json_writer w;
	int i;

	json_writer_init(&w);		/* nothing written */
	assert_null(json_writer_text(&w));
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* value without key */
	json_write_object_begin(&w);
	json_write_i64(&w, 1);
	assert_int_equal(w.err, -EINVAL);
	json_write_object_end(&w);	/* error sticks */
	assert_null(json_writer_text(&w));
	json_writer_free(&w);

	json_writer_init(&w);		/* key in array */
	json_write_array_begin(&w);
	json_write_key(&w, "a");
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* key without value */
	json_write_object_begin(&w);
	json_write_key(&w, "a");
	json_write_object_end(&w);
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* two keys in a row */
	json_write_object_begin(&w);
	json_write_key(&w, "a");
	json_write_key(&w, "b");
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* mismatched end */
	json_write_array_begin(&w);
	json_write_object_end(&w);
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* unbalanced end */
	json_write_array_end(&w);
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* unclosed */
	json_write_array_begin(&w);
	assert_null(json_writer_text(&w));
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* two top-level values */
	json_write_null(&w);
	json_write_null(&w);
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* key at top level */
	json_write_key(&w, "a");
	assert_int_equal(w.err, -EINVAL);
	json_writer_free(&w);

	json_writer_init(&w);		/* too deep */
	for (i = 0; i < JSON_WRITER_MAX_DEPTH; i++)
		json_write_array_begin(&w);
	assert_int_equal(w.err, 0);
	json_write_array_begin(&w);
	assert_int_equal(w.err, -E2BIG);
	json_writer_free(&w);
}

/* Writer values read back as the same values. */
static void test_writer_roundtrip(void **state UNUSED)
{
	static const double dbl[] = {
		0.1, -0.5, 1.0 / 3, 2.0 / 3, M_PI, 1e-300, 5e-324, DBL_MIN, DBL_MAX, -DBL_MAX,
		123456789.123456789, 1e21, 1e22, 4.35, 0.3, 9007199254740993.0, 1e15 + 0.3,
	};
	static const char *const strs[] = {
		"", "plain", "q\"b\\s/", "\x01\x02\x1f\x7f\n", "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
	};
	const struct json_value *root, *arr;
	struct json_writer w;
	struct json_doc *doc;
	size_t k;
	double d;
	int64_t i;
	uint64_t u;

	json_writer_init(&w);
	json_write_object_begin(&w);
	json_write_key(&w, "dbl");
	json_write_array_begin(&w);
	for (k = 0; k < sizeof(dbl) / sizeof(dbl[0]); k++)
		json_write_double(&w, dbl[k]);
	json_write_array_end(&w);
	json_write_key(&w, "str");
	json_write_array_begin(&w);
	for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		json_write_string(&w, strs[k]);
	json_write_array_end(&w);
	json_write_key(&w, "\"key\"\n");
	json_write_i64(&w, INT64_MIN);
	json_write_key(&w, "u");
	json_write_u64(&w, UINT64_MAX);
	json_write_key(&w, "b");
	json_write_bool(&w, true);
	json_write_object_end(&w);
	assert_non_null(json_writer_text(&w));

	doc = parse_ok(json_writer_text(&w));
	root = json_doc_root(doc);
	arr = json_object_get(root, "dbl");
	assert_int_equal(json_length(arr), sizeof(dbl) / sizeof(dbl[0]));
	for (k = 0; k < sizeof(dbl) / sizeof(dbl[0]); k++) {
		assert_true(json_get_double(json_array_at(arr, k), &d));
		if (d != dbl[k])
			fail_msg("double %.17g read back as %.17g", dbl[k], d);
	}
	arr = json_object_get(root, "str");
	for (k = 0; k < sizeof(strs) / sizeof(strs[0]); k++)
		assert_string_equal(json_get_string(json_array_at(arr, k)), strs[k]);
	assert_true(json_get_i64(json_object_get(root, "\"key\"\n"), &i));
	assert_true(i == INT64_MIN);
	assert_true(json_get_u64(json_object_get(root, "u"), &u));
	assert_true(u == UINT64_MAX);
	json_doc_free(doc);
	json_writer_free(&w);
}

/* parse -> json_write_value -> parse gives an equal document. */
static void test_value_roundtrip(void **state UNUSED)
{
	static const char *const docs[] = {
		"{\"execute\":\"checkpoint\",\"arguments\":{\"out\":\"/tmp/x\",\"mode\":\"live\"},\"id\":7}",
		"[1, -2.5e+3, 0, -0, 7.0, 1e19, 1e20, 1e-7, true, false, null, \"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\\u0001\"]",
		"{\"z\":{\"y\":[[],{},[{}]]},\"\":\"\",\"n\":123456789012345678901234567890}",
		"\"just a string\"", "-12", "null",
	};
	struct json_doc *a, *b;
	struct json_writer w;
	size_t k;

	for (k = 0; k < sizeof(docs) / sizeof(docs[0]); k++) {
		a = parse_ok(docs[k]);
		json_writer_init(&w);
		json_write_value(&w, json_doc_root(a));
		assert_non_null(json_writer_text(&w));
		b = parse_ok(json_writer_text(&w));
		assert_true(json_equal(json_doc_root(a), json_doc_root(b)));
		json_doc_free(b);
		json_writer_free(&w);
		json_doc_free(a);
	}

	/* json_equal itself */
	a = parse_ok("{\"a\":1,\"b\":[1,2]}");
	b = parse_ok("{\"b\":[1,2],\"a\":1.0}");
	assert_true(json_equal(json_doc_root(a), json_doc_root(b)));
	json_doc_free(b);
	b = parse_ok("{\"b\":[2,1],\"a\":1}");
	assert_false(json_equal(json_doc_root(a), json_doc_root(b)));
	json_doc_free(b);
	b = parse_ok("{\"a\":1,\"c\":[1,2]}");
	assert_false(json_equal(json_doc_root(a), json_doc_root(b)));
	json_doc_free(b);
	json_doc_free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scalars),
		cmocka_unit_test(test_numbers),
		cmocka_unit_test(test_bad_numbers),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_bad_utf8),
		cmocka_unit_test(test_containers),
		cmocka_unit_test(test_qmp_shapes),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_not_nul_terminated),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_depth),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_writer_basic),
		cmocka_unit_test(test_writer_escaping),
		cmocka_unit_test(test_writer_misuse),
		cmocka_unit_test(test_writer_roundtrip),
		cmocka_unit_test(test_value_roundtrip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
