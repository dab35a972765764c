/* JSON parser for the control socket (the writer is in json_write.c).
 *
 * The parser is a security boundary: its input comes from untrusted clients
 * and is fuzzed.  It is recursive descent with the recursion bounded by
 * JSON_MAX_DEPTH, never reads past text + len, counts every value against
 * JSON_MAX_VALUES and checks every allocation.  All memory of a document
 * lives in a chain of arena blocks owned by struct json_doc, so a failed
 * parse frees everything in one place.
 *
 * Numbers go through strtod(), so they assume the "C" LC_NUMERIC locale;
 * vmm never calls setlocale().
 */
#include "vmm/json.h"

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One array element (key NULL) or object member. */
struct json_member {
	const char *key;
	size_t key_len;
	const struct json_value *val;
};

struct json_value {
	enum json_type type;
	union {
		bool b;
		struct {
			double d;
			int64_t i;
			uint64_t u;
			bool has_i, has_u;
		} num;
		const char *str;
		struct {
			const struct json_member *m;
			size_t n;
		} c;
	} u;
};

struct json_block {
	struct json_block *next;
	size_t used, cap;
	max_align_t data[];
};

struct json_doc {
	struct json_block *blocks;
	const struct json_value *root;
};

struct json_parser {
	const char *start, *p, *end;
	struct json_doc *doc;
	size_t nvalues;
	struct json_member *stack;	/* members of all open containers */
	size_t stack_len, stack_cap;
	const char *errmsg;
	size_t errpos;
};

#define JSON_BLOCK_MIN 2048u
#define JSON_BLOCK_MAX (256u << 10)

/* Bump allocation from the document's arena; NULL when out of memory. */
static void *json_doc_alloc(struct json_doc *doc, size_t size)
{
	const size_t align = alignof(max_align_t);
	struct json_block *b = doc->blocks;
	void *p;

	if (size > SIZE_MAX / 2)
		return NULL;
	size = (size + align - 1) & ~(align - 1);
	if (!b || b->cap - b->used < size) {
		size_t cap = b ? b->cap * 2 : JSON_BLOCK_MIN;

		if (cap > JSON_BLOCK_MAX)
			cap = JSON_BLOCK_MAX;
		if (cap < size)
			cap = size;
		b = malloc(sizeof(*b) + cap);
		if (!b)
			return NULL;
		b->next = doc->blocks;
		b->used = 0;
		b->cap = cap;
		doc->blocks = b;
	}
	p = (unsigned char *)b->data + b->used;
	b->used += size;
	return p;
}

void json_doc_free(struct json_doc *doc)
{
	struct json_block *b, *next;

	if (!doc)
		return;
	for (b = doc->blocks; b; b = next) {
		next = b->next;
		free(b);
	}
	free(doc);
}

const struct json_value *json_doc_root(const struct json_doc *doc)
{
	return doc ? doc->root : NULL;
}

size_t json_utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	unsigned char c = s[0];
	uint32_t v, min;
	size_t len, i;

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2, v = c & 0x1f, min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3, v = c & 0x0f, min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4, v = c & 0x07, min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/* Encode a code point (not a surrogate, <= U+10FFFF); returns bytes written. */
static size_t json_utf8_encode(uint32_t cp, char *o)
{
	static const unsigned char lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4, i;

	for (i = n - 1; i > 0; i--, cp >>= 6)
		o[i] = (char)(0x80 | (cp & 0x3f));
	o[0] = (char)(lead[n] | cp);
	return n;
}

static int json_fail(struct json_parser *ps, const char *at, int err, const char *msg)
{
	ps->errmsg = msg;
	ps->errpos = (size_t)(at - ps->start);
	return err;
}

static void json_skip_ws(struct json_parser *ps)
{
	while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' ||
				   *ps->p == '\n' || *ps->p == '\r'))
		ps->p++;
}

static bool json_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Four hex digits at s (caller guarantees they are in bounds). */
static bool json_hex4(const char *s, uint32_t *out)
{
	uint32_t v = 0;
	int i;

	for (i = 0; i < 4; i++) {
		char c = s[i];

		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (uint32_t)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (uint32_t)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (uint32_t)(c - 'A' + 10);
		else
			return false;
	}
	*out = v;
	return true;
}

/* Decode the \u escape(s) at q (q[0] == '\\', q[1] == 'u', s the closing
 * quote): a BMP code point or a surrogate pair.  Sets *cp and *used (bytes
 * of text consumed); rejects lone surrogates and U+0000. */
static int json_parse_uescape(struct json_parser *ps, const char *q, const char *s,
			      uint32_t *cp, size_t *used)
{
	uint32_t hi, lo;

	if (s - q < 6 || !json_hex4(q + 2, &hi))
		return json_fail(ps, q, -EINVAL, "bad \\u escape");
	*used = 6;
	if (hi >= 0xdc00 && hi <= 0xdfff)
		return json_fail(ps, q, -EINVAL, "lone low surrogate");
	if (hi >= 0xd800 && hi <= 0xdbff) {
		if (s - q < 12 || q[6] != '\\' || q[7] != 'u' || !json_hex4(q + 8, &lo) ||
		    lo < 0xdc00 || lo > 0xdfff)
			return json_fail(ps, q, -EINVAL, "lone high surrogate");
		hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
		*used = 12;
	}
	if (hi == 0)
		return json_fail(ps, q, -EINVAL, "\\u0000 in string");
	*cp = hi;
	return 0;
}

/* ps->p at the opening quote.  Decodes into the arena; *out_len (if
 * non-NULL) gets the decoded length.  Leaves ps->p past the closing quote. */
static int json_parse_string(struct json_parser *ps, const char **out, size_t *out_len)
{
	const char *q = ps->p + 1, *s;
	char *buf, *o;
	uint32_t cp;
	size_t n;
	int err;

	/* Find the closing quote to size the buffer: decoding never grows. */
	for (s = q; s < ps->end && *s != '"'; s++)
		if (*s == '\\' && ++s == ps->end)
			break;
	if (s >= ps->end)
		return json_fail(ps, ps->p, -EINVAL, "unterminated string");
	buf = json_doc_alloc(ps->doc, (size_t)(s - q) + 1);
	if (!buf)
		return json_fail(ps, ps->p, -ENOMEM, "out of memory");
	o = buf;
	while (q < s) {
		unsigned char c = (unsigned char)*q;

		if (c == '\\') {	/* q + 1 < s: pass 1 skipped the escaped char */
			static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
			const char *hit = q[1] ? strchr(from, q[1]) : NULL;

			if (hit) {
				*o++ = to[hit - from];
				q += 2;
				continue;
			}
			if (q[1] != 'u')
				return json_fail(ps, q, -EINVAL, "bad escape");
			err = json_parse_uescape(ps, q, s, &cp, &n);
			if (err)
				return err;
			o += json_utf8_encode(cp, o);
			q += n;
		} else if (c < 0x20) {
			return json_fail(ps, q, -EINVAL, "control character in string");
		} else if (c < 0x80) {
			*o++ = *q++;
		} else {
			n = json_utf8_decode((const unsigned char *)q, (size_t)(s - q), &cp);
			if (!n)
				return json_fail(ps, q, -EINVAL, "invalid UTF-8");
			memcpy(o, q, n);
			o += n;
			q += n;
		}
	}
	*o = '\0';
	*out = buf;
	if (out_len)
		*out_len = (size_t)(o - buf);
	ps->p = s + 1;
	return 0;
}

static char json_digit_at(const char *ip, size_t ilen, const char *fp, size_t k)
{
	return k < ilen ? ip[k] : fp[k - ilen];
}

/* Decide exactly, on the decimal text ip[0..ilen).fp[0..flen) x 10^e10,
 * whether the number is an integer within int64/uint64 range. */
static void json_number_set_int(struct json_value *v, bool neg, const char *ip, size_t ilen,
				const char *fp, size_t flen, int64_t e10)
{
	size_t n = ilen + flen, first = 0, last = n, k;
	uint64_t mag = 0;
	int64_t e;

	while (first < n && json_digit_at(ip, ilen, fp, first) == '0')
		first++;
	if (first == n) {	/* 0, -0, 0.000e7 */
		v->u.num.has_i = v->u.num.has_u = true;
		return;
	}
	while (json_digit_at(ip, ilen, fp, last - 1) == '0')
		last--;
	e = e10 - (int64_t)flen + (int64_t)(n - last);
	if (e < 0 || (int64_t)(last - first) + e > 20)
		return;
	for (k = first; k < last; k++) {
		unsigned d = (unsigned)(json_digit_at(ip, ilen, fp, k) - '0');

		if (mag > (UINT64_MAX - d) / 10)
			return;
		mag = mag * 10 + d;
	}
	for (; e > 0; e--) {
		if (mag > UINT64_MAX / 10)
			return;
		mag *= 10;
	}
	if (!neg) {
		v->u.num.u = mag;
		v->u.num.has_u = true;
		if (mag <= INT64_MAX) {
			v->u.num.i = (int64_t)mag;
			v->u.num.has_i = true;
		}
	} else if (mag <= (uint64_t)INT64_MAX + 1) {
		v->u.num.i = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
		v->u.num.has_i = true;
	}
}

static int json_parse_number(struct json_parser *ps, struct json_value *v)
{
	const char *s = ps->p, *q = s, *e = ps->end, *ip, *fp = NULL;
	char buf[JSON_MAX_NUMBER + 1];
	size_t ilen, flen = 0;
	int64_t e10 = 0;
	bool neg = false, eneg = false;
	double d;

	if (*q == '-') {
		neg = true;
		q++;
	}
	if (q == e || !json_is_digit(*q))
		return json_fail(ps, q, -EINVAL, "bad number: digit expected");
	ip = q;
	if (*q == '0') {
		q++;
		if (q < e && json_is_digit(*q))
			return json_fail(ps, q, -EINVAL, "bad number: leading zero");
	} else {
		while (q < e && json_is_digit(*q))
			q++;
	}
	ilen = (size_t)(q - ip);
	if (q < e && *q == '.') {
		fp = ++q;
		while (q < e && json_is_digit(*q))
			q++;
		flen = (size_t)(q - fp);
		if (!flen)
			return json_fail(ps, q, -EINVAL, "bad number: digit expected after '.'");
	}
	if (q < e && (*q == 'e' || *q == 'E')) {
		q++;
		if (q < e && (*q == '+' || *q == '-'))
			eneg = *q++ == '-';
		if (q == e || !json_is_digit(*q))
			return json_fail(ps, q, -EINVAL, "bad number: exponent digit expected");
		for (; q < e && json_is_digit(*q); q++)
			if (e10 < 1000000000)	/* saturate: far beyond double range */
				e10 = e10 * 10 + (*q - '0');
		if (eneg)
			e10 = -e10;
	}
	if (q - s > JSON_MAX_NUMBER)
		return json_fail(ps, s, -E2BIG, "number too long");
	memcpy(buf, s, (size_t)(q - s));
	buf[q - s] = '\0';
	d = strtod(buf, NULL);
	if (!isfinite(d))
		return json_fail(ps, s, -EINVAL, "number out of range");
	v->type = JSON_NUMBER;
	v->u.num.d = d;
	json_number_set_int(v, neg, ip, ilen, fp, flen, e10);
	ps->p = q;
	return 0;
}

static int json_stack_push(struct json_parser *ps, const struct json_member *m)
{
	if (ps->stack_len == ps->stack_cap) {
		size_t cap = ps->stack_cap ? ps->stack_cap * 2 : 16;
		struct json_member *ns = realloc(ps->stack, cap * sizeof(*ns));

		if (!ns)
			return json_fail(ps, ps->p, -ENOMEM, "out of memory");
		ps->stack = ns;
		ps->stack_cap = cap;
	}
	ps->stack[ps->stack_len++] = *m;
	return 0;
}

static int json_member_cmp(const void *a, const void *b)
{
	const struct json_member *x = a, *y = b;

	if (x->key_len != y->key_len)
		return x->key_len < y->key_len ? -1 : 1;
	return memcmp(x->key, y->key, x->key_len);
}

static int json_parse_value(struct json_parser *ps, unsigned depth,
			    const struct json_value **out);

/* ps->p at '[' or '{'; depth counts this container. */
static int json_parse_container(struct json_parser *ps, unsigned depth, struct json_value *v)
{
	const bool obj = *ps->p == '{';
	const char close = obj ? '}' : ']', *open = ps->p;
	size_t base = ps->stack_len, n, i;
	struct json_member m, *dst;
	int err;

	v->type = obj ? JSON_OBJECT : JSON_ARRAY;
	ps->p++;
	json_skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 0;
	}
	for (;;) {
		memset(&m, 0, sizeof(m));
		if (obj) {
			json_skip_ws(ps);
			if (ps->p == ps->end)
				return json_fail(ps, ps->p, -EINVAL, "unexpected end of input");
			if (*ps->p != '"')
				return json_fail(ps, ps->p, -EINVAL, "expected string key");
			err = json_parse_string(ps, &m.key, &m.key_len);
			if (err)
				return err;
			json_skip_ws(ps);
			if (ps->p == ps->end || *ps->p != ':')
				return json_fail(ps, ps->p, -EINVAL, "expected ':'");
			ps->p++;
		}
		err = json_parse_value(ps, depth, &m.val);
		if (!err)
			err = json_stack_push(ps, &m);
		if (err)
			return err;
		json_skip_ws(ps);
		if (ps->p == ps->end)
			return json_fail(ps, ps->p, -EINVAL, "unexpected end of input");
		if (*ps->p == close)
			break;
		if (*ps->p != ',')
			return json_fail(ps, ps->p, -EINVAL,
					 obj ? "expected ',' or '}'" : "expected ',' or ']'");
		ps->p++;
	}
	ps->p++;
	n = ps->stack_len - base;
	dst = json_doc_alloc(ps->doc, n * sizeof(*dst));
	if (!dst)
		return json_fail(ps, open, -ENOMEM, "out of memory");
	memcpy(dst, ps->stack + base, n * sizeof(*dst));
	if (obj && n > 1) {	/* sort the scratch copy: O(n log n), not O(n^2) */
		qsort(ps->stack + base, n, sizeof(*dst), json_member_cmp);
		for (i = 1; i < n; i++)
			if (!json_member_cmp(&ps->stack[base + i - 1], &ps->stack[base + i]))
				return json_fail(ps, open, -EINVAL, "duplicate key");
	}
	ps->stack_len = base;
	v->u.c.m = dst;
	v->u.c.n = n;
	return 0;
}

static int json_parse_literal(struct json_parser *ps, const char *word, size_t n)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n))
		return json_fail(ps, ps->p, -EINVAL, "unexpected character");
	ps->p += n;
	return 0;
}

/* depth: containers open around this value. */
static int json_parse_value(struct json_parser *ps, unsigned depth,
			    const struct json_value **out)
{
	struct json_value *v;
	int err;

	json_skip_ws(ps);
	if (ps->p == ps->end)
		return json_fail(ps, ps->p, -EINVAL, "unexpected end of input");
	if (++ps->nvalues > JSON_MAX_VALUES)
		return json_fail(ps, ps->p, -E2BIG, "too many values");
	v = json_doc_alloc(ps->doc, sizeof(*v));
	if (!v)
		return json_fail(ps, ps->p, -ENOMEM, "out of memory");
	memset(v, 0, sizeof(*v));
	switch (*ps->p) {
	case '{':
	case '[':
		if (depth >= JSON_MAX_DEPTH)
			return json_fail(ps, ps->p, -E2BIG, "nesting too deep");
		err = json_parse_container(ps, depth + 1, v);
		break;
	case '"':
		v->type = JSON_STRING;
		err = json_parse_string(ps, &v->u.str, NULL);
		break;
	case 't':
		v->type = JSON_BOOL;
		v->u.b = true;
		err = json_parse_literal(ps, "true", 4);
		break;
	case 'f':
		v->type = JSON_BOOL;
		err = json_parse_literal(ps, "false", 5);
		break;
	case 'n':
		v->type = JSON_NULL;
		err = json_parse_literal(ps, "null", 4);
		break;
	default:
		if (*ps->p != '-' && !json_is_digit(*ps->p))
			return json_fail(ps, ps->p, -EINVAL, "unexpected character");
		err = json_parse_number(ps, v);
		break;
	}
	if (err)
		return err;
	*out = v;
	return 0;
}

int json_parse_errpos(const char *text, size_t len, struct json_doc **out,
		      const char **errmsg, size_t *errpos)
{
	struct json_parser ps = { .errmsg = "invalid argument" };
	struct json_doc *doc;
	int err;

	if (out)
		*out = NULL;
	if (errmsg)
		*errmsg = NULL;
	if (errpos)
		*errpos = 0;
	if (!out || !text || !len) {
		err = -EINVAL;
		if (out && !len)
			ps.errmsg = "empty input";
		goto fail;
	}
	if (len > JSON_MAX_TEXT) {
		err = -E2BIG;
		ps.errmsg = "document too large";
		goto fail;
	}
	doc = calloc(1, sizeof(*doc));
	if (!doc) {
		err = -ENOMEM;
		ps.errmsg = "out of memory";
		goto fail;
	}
	ps.start = ps.p = text;
	ps.end = text + len;
	ps.doc = doc;
	err = json_parse_value(&ps, 0, &doc->root);
	if (!err) {
		json_skip_ws(&ps);
		if (ps.p != ps.end)
			err = json_fail(&ps, ps.p, -EINVAL, "trailing characters after value");
	}
	free(ps.stack);
	if (err) {
		json_doc_free(doc);
		goto fail;
	}
	*out = doc;
	return 0;
fail:
	if (errmsg)
		*errmsg = ps.errmsg;
	if (errpos)
		*errpos = ps.errpos;
	return err;
}

int json_parse(const char *text, size_t len, struct json_doc **out, const char **errmsg)
{
	return json_parse_errpos(text, len, out, errmsg, NULL);
}

enum json_type json_type_of(const struct json_value *v)
{
	return v ? v->type : JSON_NULL;
}

static bool json_is_container(const struct json_value *v)
{
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT);
}

size_t json_length(const struct json_value *v)
{
	return json_is_container(v) ? v->u.c.n : 0;
}

const struct json_value *json_object_get(const struct json_value *obj, const char *key)
{
	size_t i, klen;

	if (!obj || obj->type != JSON_OBJECT || !key)
		return NULL;
	klen = strlen(key);
	for (i = 0; i < obj->u.c.n; i++)
		if (obj->u.c.m[i].key_len == klen && !memcmp(obj->u.c.m[i].key, key, klen))
			return obj->u.c.m[i].val;
	return NULL;
}

static const struct json_member *json_member_at(const struct json_value *v,
						 enum json_type type, size_t i)
{
	return v && v->type == type && i < v->u.c.n ? &v->u.c.m[i] : NULL;
}

const struct json_value *json_array_at(const struct json_value *arr, size_t i)
{
	const struct json_member *m = json_member_at(arr, JSON_ARRAY, i);

	return m ? m->val : NULL;
}

const char *json_object_key_at(const struct json_value *obj, size_t i)
{
	const struct json_member *m = json_member_at(obj, JSON_OBJECT, i);

	return m ? m->key : NULL;
}

const struct json_value *json_object_value_at(const struct json_value *obj, size_t i)
{
	const struct json_member *m = json_member_at(obj, JSON_OBJECT, i);

	return m ? m->val : NULL;
}

const char *json_get_string(const struct json_value *v)
{
	return v && v->type == JSON_STRING ? v->u.str : NULL;
}

bool json_get_bool(const struct json_value *v, bool *out)
{
	if (!v || v->type != JSON_BOOL)
		return false;
	*out = v->u.b;
	return true;
}

bool json_get_i64(const struct json_value *v, int64_t *out)
{
	if (!v || v->type != JSON_NUMBER || !v->u.num.has_i)
		return false;
	*out = v->u.num.i;
	return true;
}

bool json_get_u64(const struct json_value *v, uint64_t *out)
{
	if (!v || v->type != JSON_NUMBER || !v->u.num.has_u)
		return false;
	*out = v->u.num.u;
	return true;
}

bool json_get_double(const struct json_value *v, double *out)
{
	if (!v || v->type != JSON_NUMBER)
		return false;
	*out = v->u.num.d;
	return true;
}

bool json_equal(const struct json_value *a, const struct json_value *b)
{
	size_t i;

	if (!a || !b || a->type != b->type)
		return a == b;
	switch (a->type) {
	case JSON_NULL:
		return true;
	case JSON_BOOL:
		return a->u.b == b->u.b;
	case JSON_NUMBER:
		if (a->u.num.d != b->u.num.d)
			return false;
		if (a->u.num.has_i && b->u.num.has_i && a->u.num.i != b->u.num.i)
			return false;
		return !(a->u.num.has_u && b->u.num.has_u && a->u.num.u != b->u.num.u);
	case JSON_STRING:
		return !strcmp(a->u.str, b->u.str);
	case JSON_ARRAY:
	case JSON_OBJECT:
		if (a->u.c.n != b->u.c.n)
			return false;
		for (i = 0; i < a->u.c.n; i++) {
			const struct json_value *bv = a->type == JSON_ARRAY ? b->u.c.m[i].val :
				json_object_get(b, a->u.c.m[i].key);

			if (!bv || !json_equal(a->u.c.m[i].val, bv))
				return false;
		}
		return true;
	}
	return false;
}
