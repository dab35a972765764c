/* printf-style formatting for the guest kit, to any sink (a buffer or the
 * UART). Small on purpose: what test guests print, nothing more. */
#include "kit_internal.h"

struct kit_spec {
	bool left;		/* '-' */
	bool zero;		/* '0' */
	int width;
	int precision;		/* -1: none */
	int size;		/* 0 int, 1 long, 2 long long, 3 size_t */
};

static void format_pad(struct kit_sink *sink, char c, int n)
{
	while (n-- > 0)
		sink->put(sink, c);
}

/* Emit digits (already reversed in tmp) with sign/prefix and padding. */
static void format_number(struct kit_sink *sink, const struct kit_spec *spec,
			  uint64_t val, unsigned int base, bool upper,
			  bool negative, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, plen = prefix ? (int)strlen(prefix) : 0;
	int len;

	do {
		tmp[n++] = digits[val % base];
		val /= base;
	} while (val);
	len = n + plen + (negative ? 1 : 0);
	if (!spec->left && !spec->zero)
		format_pad(sink, ' ', spec->width - len);
	if (negative)
		sink->put(sink, '-');
	for (int i = 0; i < plen; i++)
		sink->put(sink, prefix[i]);
	if (!spec->left && spec->zero)
		format_pad(sink, '0', spec->width - len);
	while (n)
		sink->put(sink, tmp[--n]);
	if (spec->left)
		format_pad(sink, ' ', spec->width - len);
}

static void format_string(struct kit_sink *sink, const struct kit_spec *spec,
			  const char *s)
{
	int len = 0;

	if (!s)
		s = "(null)";
	while (s[len] && (spec->precision < 0 || len < spec->precision))
		len++;
	if (!spec->left)
		format_pad(sink, ' ', spec->width - len);
	for (int i = 0; i < len; i++)
		sink->put(sink, s[i]);
	if (spec->left)
		format_pad(sink, ' ', spec->width - len);
}

static uint64_t format_arg_unsigned(const struct kit_spec *spec, va_list *ap)
{
	switch (spec->size) {
	case 1: return va_arg(*ap, unsigned long);
	case 2: return va_arg(*ap, unsigned long long);
	case 3: return va_arg(*ap, size_t);
	default: return va_arg(*ap, unsigned int);
	}
}

static int64_t format_arg_signed(const struct kit_spec *spec, va_list *ap)
{
	switch (spec->size) {
	case 1: return va_arg(*ap, long);
	case 2: return va_arg(*ap, long long);
	case 3: return (int64_t)va_arg(*ap, size_t);
	default: return va_arg(*ap, int);
	}
}

/* Parse flags, width, precision and length of one conversion. */
static const char *format_parse_spec(const char *f, struct kit_spec *spec,
				     va_list *ap)
{
	*spec = (struct kit_spec){ .precision = -1 };
	for (;; f++) {
		if (*f == '-')
			spec->left = true;
		else if (*f == '0')
			spec->zero = true;
		else
			break;
	}
	if (*f == '*') {
		spec->width = va_arg(*ap, int);
		f++;
	}
	while (*f >= '0' && *f <= '9')
		spec->width = spec->width * 10 + (*f++ - '0');
	if (*f == '.') {
		f++;
		spec->precision = 0;
		if (*f == '*') {
			spec->precision = va_arg(*ap, int);
			f++;
		}
		while (*f >= '0' && *f <= '9')
			spec->precision = spec->precision * 10 + (*f++ - '0');
	}
	for (;; f++) {
		if (*f == 'l')
			spec->size++;
		else if (*f == 'z')
			spec->size = 3;
		else if (*f != 'h')
			break;
	}
	if (spec->size > 3)
		spec->size = 2;
	return f;
}

void kit_vformat(struct kit_sink *sink, const char *fmt, va_list ap_in)
{
	struct kit_spec spec;
	va_list ap;

	va_copy(ap, ap_in);
	for (const char *f = fmt; *f; f++) {
		if (*f != '%') {
			sink->put(sink, *f);
			continue;
		}
		f = format_parse_spec(f + 1, &spec, &ap);
		switch (*f) {
		case 'd':
		case 'i': {
			int64_t v = format_arg_signed(&spec, &ap);

			format_number(sink, &spec,
				      v < 0 ? -(uint64_t)v : (uint64_t)v, 10,
				      false, v < 0, NULL);
			break;
		}
		case 'u':
			format_number(sink, &spec, format_arg_unsigned(&spec, &ap),
				      10, false, false, NULL);
			break;
		case 'x':
		case 'X':
			format_number(sink, &spec, format_arg_unsigned(&spec, &ap),
				      16, *f == 'X', false, NULL);
			break;
		case 'p':
			format_number(sink, &spec,
				      (uint64_t)(uintptr_t)va_arg(ap, void *),
				      16, false, false, "0x");
			break;
		case 'c':
			spec.precision = -1;
			format_pad(sink, ' ', spec.left ? 0 : spec.width - 1);
			sink->put(sink, (char)va_arg(ap, int));
			format_pad(sink, ' ', spec.left ? spec.width - 1 : 0);
			break;
		case 's':
			format_string(sink, &spec, va_arg(ap, const char *));
			break;
		case '%':
			sink->put(sink, '%');
			break;
		case '\0':
			f--;	/* lone '%' at the end */
			break;
		default:	/* unknown: print it verbatim */
			sink->put(sink, '%');
			sink->put(sink, *f);
			break;
		}
	}
	va_end(ap);
}

static void format_put_buf(struct kit_sink *sink, char c)
{
	if (sink->len + 1 < sink->size)
		sink->buf[sink->len] = c;
	sink->len++;
}

/* Like vsnprintf: returns the length the full output would have. */
int kit_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct kit_sink sink = {
		.put = format_put_buf, .buf = buf, .size = size,
	};

	kit_vformat(&sink, fmt, ap);
	if (size)
		buf[sink.len < size ? sink.len : size - 1] = '\0';
	return (int)sink.len;
}

int kit_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = kit_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
