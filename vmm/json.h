/* JSON for the control socket: a strict RFC 8259 parser for untrusted input
 * (one value per call, hard limits on size, nesting and value count, no
 * logging) and a writer that builds one line of JSON into a growing buffer.
 *
 * Parsed documents are immutable; every value points into memory owned by
 * its struct json_doc and dies with json_doc_free().  All accessors accept
 * NULL and then return NULL / 0 / false, so lookups can be chained:
 *     json_get_string(json_object_get(args, "out"))
 */
#ifndef VMM_JSON_H
#define VMM_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define JSON_MAX_DEPTH 32		/* open arrays/objects at once */
#define JSON_MAX_VALUES 4096		/* values of all types per document (keys are not values) */
#define JSON_MAX_TEXT (1u << 20)	/* bytes of input per document */
#define JSON_MAX_NUMBER 512		/* characters of one number literal */
#define JSON_WRITER_MAX_DEPTH 64
#define JSON_WRITER_MAX_TEXT (16u << 20)

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

struct json_value;	/* opaque */
struct json_doc;	/* owns all memory of one parsed document */

/* Parse exactly one JSON value from text[0..len) (surrounding whitespace
 * allowed, nothing else); text need not be NUL-terminated.  Returns 0 and
 * *out, or -EINVAL (syntax, invalid UTF-8, duplicate key, number out of
 * double range), -E2BIG (nesting over JSON_MAX_DEPTH, more than
 * JSON_MAX_VALUES values, len over JSON_MAX_TEXT, number literal over
 * JSON_MAX_NUMBER characters) or -ENOMEM.  On error *out is NULL and, if
 * errmsg is non-NULL, *errmsg is a static description. */
int json_parse(const char *text, size_t len, struct json_doc **out, const char **errmsg);
/* As json_parse; on error also sets *errpos (if non-NULL) to the byte offset
 * in text where the problem was found. */
int json_parse_errpos(const char *text, size_t len, struct json_doc **out,
		      const char **errmsg, size_t *errpos);
const struct json_value *json_doc_root(const struct json_doc *doc);
void json_doc_free(struct json_doc *doc);

/* JSON_NULL also for v == NULL (an absent member reads like null). */
enum json_type json_type_of(const struct json_value *v);
/* NULL if absent or obj not an object. */
const struct json_value *json_object_get(const struct json_value *obj, const char *key);
/* Member count of an array or object; 0 for anything else. */
size_t json_length(const struct json_value *v);
/* Members in document order; NULL if out of range or wrong type. */
const struct json_value *json_array_at(const struct json_value *arr, size_t i);
const char *json_object_key_at(const struct json_value *obj, size_t i);
const struct json_value *json_object_value_at(const struct json_value *obj, size_t i);
/* NULL unless a string; decoded UTF-8, NUL-terminated, never contains NUL. */
const char *json_get_string(const struct json_value *v);
/* false (and *out untouched) if v is not of the type, or for the integer
 * getters if the number is not integral or not exactly representable.
 * Integrality is decided on the decimal text: 7, 7.0 and 7e0 are integral,
 * 7.5 and 1e-1 are not. */
bool json_get_bool(const struct json_value *v, bool *out);
bool json_get_i64(const struct json_value *v, int64_t *out);
bool json_get_u64(const struct json_value *v, uint64_t *out);
bool json_get_double(const struct json_value *v, double *out);
/* Deep equality: object member order is ignored; numbers are equal when
 * their doubles are equal and, if both are integral, their integers are. */
bool json_equal(const struct json_value *a, const struct json_value *b);

/* Length of the valid UTF-8 sequence at s[0..n) (n >= 1) and its code point
 * in *cp, or 0 if invalid (overlong, surrogate, above U+10FFFF, truncated).
 * Shared by the parser and the writer. */
size_t json_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* A writer building one line of JSON into a growing buffer.  The first error
 * sticks in err (-ENOMEM, -E2BIG past JSON_WRITER_MAX_TEXT or
 * JSON_WRITER_MAX_DEPTH, -EINVAL for misuse such as a value without a key
 * inside an object or mismatched ends); check once at the end. */
struct json_writer {
	char *buf;
	size_t len, cap;
	int err;
	unsigned depth;		/* open containers */
	uint64_t is_object;	/* bit d-1: container at depth d is an object */
	uint64_t has_items;	/* bit d-1: container at depth d has a member */
	bool after_key;		/* a key was written, its value is due */
	bool started;		/* the top-level value has begun */
};
void json_writer_init(struct json_writer *w);
void json_writer_free(struct json_writer *w);
void json_write_object_begin(struct json_writer *w);
void json_write_object_end(struct json_writer *w);
void json_write_array_begin(struct json_writer *w);
void json_write_array_end(struct json_writer *w);
/* Inside an object, before each value. */
void json_write_key(struct json_writer *w, const char *key);
/* Escapes ", \ and control characters; invalid UTF-8 bytes become U+FFFD.
 * s == NULL writes null. */
void json_write_string(struct json_writer *w, const char *s);
void json_write_i64(struct json_writer *w, int64_t v);
void json_write_u64(struct json_writer *w, uint64_t v);
/* Finite values in the shortest form that reads back exactly; else null. */
void json_write_double(struct json_writer *w, double v);
void json_write_bool(struct json_writer *w, bool v);
void json_write_null(struct json_writer *w);
/* Writes a parsed value (e.g. to echo a request's "id"); NULL writes null. */
void json_write_value(struct json_writer *w, const struct json_value *v);
/* The NUL-terminated text (no newline), or NULL if w->err or the top-level
 * value is incomplete (which also sets w->err = -EINVAL). */
const char *json_writer_text(struct json_writer *w);

#endif
