/* JSON writer: builds one line of JSON into a growing buffer; the first
 * error sticks (see json.h). */
#include "vmm/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void json_writer_init(struct json_writer *w)
{
	memset(w, 0, sizeof(*w));
}

void json_writer_free(struct json_writer *w)
{
	free(w->buf);
	json_writer_init(w);
}

/* Room for n more bytes plus the NUL; sets the sticky error otherwise. */
static bool json_writer_reserve(struct json_writer *w, size_t n)
{
	size_t cap;
	char *nb;

	if (w->err)
		return false;
	if (n >= JSON_WRITER_MAX_TEXT - w->len) {
		w->err = -E2BIG;
		return false;
	}
	if (w->len + n + 1 <= w->cap)
		return true;
	for (cap = w->cap ? w->cap : 256; cap < w->len + n + 1; cap *= 2)
		;
	if (cap > JSON_WRITER_MAX_TEXT)
		cap = JSON_WRITER_MAX_TEXT;
	nb = realloc(w->buf, cap);
	if (!nb) {
		w->err = -ENOMEM;
		return false;
	}
	w->buf = nb;
	w->cap = cap;
	return true;
}

static void json_writer_put(struct json_writer *w, const char *s, size_t n)
{
	if (!json_writer_reserve(w, n))
		return;
	memcpy(w->buf + w->len, s, n);
	w->len += n;
	w->buf[w->len] = '\0';
}

static uint64_t json_writer_bit(const struct json_writer *w)
{
	return 1ull << (w->depth - 1);
}

/* Place a value: comma in arrays, check a key preceded it in objects. */
static bool json_writer_begin_value(struct json_writer *w)
{
	uint64_t bit;

	if (w->err)
		return false;
	if (w->depth == 0) {
		if (w->started)
			w->err = -EINVAL;
		w->started = true;
		return !w->err;
	}
	bit = json_writer_bit(w);
	if (w->is_object & bit) {
		if (!w->after_key)
			w->err = -EINVAL;
		w->after_key = false;
		return !w->err;
	}
	if (w->has_items & bit)
		json_writer_put(w, ",", 1);
	w->has_items |= bit;
	return !w->err;
}

static void json_writer_open(struct json_writer *w, bool obj)
{
	uint64_t bit;

	if (!json_writer_begin_value(w))
		return;
	if (w->depth >= JSON_WRITER_MAX_DEPTH) {
		w->err = -E2BIG;
		return;
	}
	w->depth++;
	bit = json_writer_bit(w);
	w->is_object = obj ? w->is_object | bit : w->is_object & ~bit;
	w->has_items &= ~bit;
	json_writer_put(w, obj ? "{" : "[", 1);
}

static void json_writer_close(struct json_writer *w, bool obj)
{
	if (w->err)
		return;
	if (!w->depth || !(w->is_object & json_writer_bit(w)) != !obj || w->after_key) {
		w->err = -EINVAL;
		return;
	}
	json_writer_put(w, obj ? "}" : "]", 1);
	w->depth--;
}

void json_write_object_begin(struct json_writer *w) { json_writer_open(w, true); }
void json_write_object_end(struct json_writer *w) { json_writer_close(w, true); }
void json_write_array_begin(struct json_writer *w) { json_writer_open(w, false); }
void json_write_array_end(struct json_writer *w) { json_writer_close(w, false); }

/* Quoted, escaped s: runs of plain ASCII copied at once, valid UTF-8 kept,
 * each invalid byte replaced by U+FFFD. */
static void json_writer_put_string(struct json_writer *w, const char *s)
{
	static const char hex[] = "0123456789abcdef", from[] = "\"\\\b\f\n\r\t",
			  to[] = "\"\\bfnrt";
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s), i = 0, run, len;
	uint32_t cp;

	json_writer_put(w, "\"", 1);
	while (i < n && !w->err) {
		unsigned char c = p[i];
		char esc[6] = { '\\', 'u', '0', '0' };
		const char *hit;

		for (run = i; run < n && p[run] >= 0x20 && p[run] < 0x80 &&
			      p[run] != '"' && p[run] != '\\'; run++)
			;
		if (run > i) {
			json_writer_put(w, s + i, run - i);
			i = run;
			continue;
		}
		if (c >= 0x80) {
			len = json_utf8_decode(p + i, n - i, &cp);
			if (len)
				json_writer_put(w, s + i, len);
			else
				json_writer_put(w, "\xef\xbf\xbd", 3);
			i += len ? len : 1;
			continue;
		}
		hit = strchr(from, c);	/* c != 0: s is NUL-terminated */
		if (hit) {
			esc[1] = to[hit - from];
			json_writer_put(w, esc, 2);
		} else {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			json_writer_put(w, esc, sizeof(esc));
		}
		i++;
	}
	json_writer_put(w, "\"", 1);
}

void json_write_key(struct json_writer *w, const char *key)
{
	uint64_t bit;

	if (w->err)
		return;
	if (!w->depth || !key || w->after_key || !(w->is_object & json_writer_bit(w))) {
		w->err = -EINVAL;
		return;
	}
	bit = json_writer_bit(w);
	if (w->has_items & bit)
		json_writer_put(w, ",", 1);
	w->has_items |= bit;
	json_writer_put_string(w, key);
	json_writer_put(w, ":", 1);
	w->after_key = true;
}

void json_write_string(struct json_writer *w, const char *s)
{
	if (!s)
		json_write_null(w);
	else if (json_writer_begin_value(w))
		json_writer_put_string(w, s);
}

static void json_writer_put_raw(struct json_writer *w, const char *s)
{
	if (json_writer_begin_value(w))
		json_writer_put(w, s, strlen(s));
}

void json_write_i64(struct json_writer *w, int64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", (long long)v);
	json_writer_put_raw(w, buf);
}

void json_write_u64(struct json_writer *w, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	json_writer_put_raw(w, buf);
}

void json_write_double(struct json_writer *w, double v)
{
	char buf[32];
	int prec;

	if (!isfinite(v)) {
		json_write_null(w);
		return;
	}
	/* %g never prints a leading zero or a bare '.', so it is valid JSON. */
	for (prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, v);
		if (strtod(buf, NULL) == v)
			break;
	}
	json_writer_put_raw(w, buf);
}

void json_write_bool(struct json_writer *w, bool v)
{
	json_writer_put_raw(w, v ? "true" : "false");
}

void json_write_null(struct json_writer *w)
{
	json_writer_put_raw(w, "null");
}

void json_write_value(struct json_writer *w, const struct json_value *v)
{
	int64_t i;
	uint64_t u;
	double d;
	bool b;

	switch (json_type_of(v)) {
	case JSON_NULL:
		json_write_null(w);
		break;
	case JSON_BOOL:
		json_get_bool(v, &b);
		json_write_bool(w, b);
		break;
	case JSON_NUMBER:
		if (json_get_i64(v, &i))
			json_write_i64(w, i);
		else if (json_get_u64(v, &u))
			json_write_u64(w, u);
		else if (json_get_double(v, &d))
			json_write_double(w, d);
		break;
	case JSON_STRING:
		json_write_string(w, json_get_string(v));
		break;
	case JSON_ARRAY:
		json_write_array_begin(w);
		for (size_t k = 0; k < json_length(v) && !w->err; k++)
			json_write_value(w, json_array_at(v, k));
		json_write_array_end(w);
		break;
	case JSON_OBJECT:
		json_write_object_begin(w);
		for (size_t k = 0; k < json_length(v) && !w->err; k++) {
			json_write_key(w, json_object_key_at(v, k));
			json_write_value(w, json_object_value_at(v, k));
		}
		json_write_object_end(w);
		break;
	}
}

const char *json_writer_text(struct json_writer *w)
{
	if (w->err)
		return NULL;
	if (!w->started || w->depth) {
		w->err = -EINVAL;
		return NULL;
	}
	return w->buf;
}
