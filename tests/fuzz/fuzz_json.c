/* libFuzzer target for vmm/json.c: parse arbitrary bytes; whatever parses
 * must re-serialise through the writer, parse again and compare equal.
 * Build: clang -fsanitize=fuzzer,address,undefined -I. vmm/json.c tests/fuzz/fuzz_json.c */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct json_doc *doc = NULL, *again = NULL;
	struct json_writer w;
	const char *msg = NULL, *text;
	size_t pos = 0;
	int err;

	err = json_parse_errpos((const char *)data, size, &doc, &msg, &pos);
	if (err) {
		if ((err != -EINVAL && err != -E2BIG && err != -ENOMEM) || doc || !msg ||
		    (size && pos > size))
			abort();
		return 0;
	}
	if (!doc || !json_doc_root(doc))
		abort();

	json_writer_init(&w);
	json_write_value(&w, json_doc_root(doc));
	text = json_writer_text(&w);
	if (!text || strlen(text) != w.len)
		abort();
	if (w.len <= JSON_MAX_TEXT) {
		if (json_parse(text, w.len, &again, &msg))
			abort();
		if (!json_equal(json_doc_root(doc), json_doc_root(again)))
			abort();
		json_doc_free(again);
	}
	json_writer_free(&w);
	json_doc_free(doc);
	return 0;
}
