/* json.h: strict parsing of untrusted JSON and small case-sensitive cJSON helpers. */
#ifndef KAGARI_JSON_H
#define KAGARI_JSON_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "engine/util.h"

#define JSON_MAX_DEPTH 64

/* Validate and parse text from outside. Rejects, with a message naming the byte offset:
 * invalid UTF-8, raw NUL bytes, "\u0000" escapes (cJSON would cut the string there),
 * unpaired surrogate escapes, nesting deeper than max_depth, trailing garbage, and
 * anything that is not RFC 8259 JSON. On success *out owns the tree (cJSON_Delete). */
int json_parse_strict(const char *text, size_t len, int max_depth, cJSON **out, char **errp) KG_WUR;

/* A document parsed from outside text for reading: the same texts accepted and refused as
 * json_parse_strict, with the same messages, but its nodes and strings live in one arena
 * (one pass, a few allocations), so it is much cheaper for large bodies. The tree is
 * read-only: never cJSON_Delete, detach or add to any of its nodes; json_doc_free frees
 * it all. */
struct json_doc;
struct json_span;
/* Parse text; on success *out owns the document (json_doc_free). -1 with *errp. */
int json_doc_parse(const char *text, size_t len, int max_depth, struct json_doc **out,
                   char **errp) KG_WUR;
const cJSON *json_doc_root(const struct json_doc *d); /* borrowed from d */
/* The exact bytes of each element of array in the text: the root when it is an array, or
 * an array that is a member of the root object (an envelope's records), noted by the one
 * pass. Returns their number with *out borrowed from d, or -1 when they were not noted
 * (another array, or a document json_parse_strict built: use json_array_spans). */
long json_doc_spans(const struct json_doc *d, const cJSON *array, const struct json_span **out);
/* 1 when the document was built by the one pass (0: json_parse_strict's tree, which the
 * one pass declined to build; tests check that it never declines a valid text). */
int json_doc_in_arena(const struct json_doc *d);
void json_doc_free(struct json_doc *d); /* NULL is a no-op */

/* Case-sensitive member lookup (cJSON_GetObjectItem ignores case). NULL if absent. */
cJSON *json_get(const cJSON *obj, const char *key);
/* The member's string value if it is a string, else NULL. */
const char *json_get_string(const cJSON *obj, const char *key);

/* The byte range of one value inside a JSON text. */
struct json_span {
    size_t off, len;
};
/* The exact bytes of each element of an array in text, which must already have passed
 * json_parse_strict: of the root when key is NULL and the root is an array, else of the
 * root object's first member named key (compared as written, so a key spelled with
 * escapes is not found). Returns the number of elements with *out malloc'd (caller
 * frees; NULL for none), or -1 when there is no such array. */
long json_array_spans(const char *text, size_t len, const char *key, struct json_span **out);

/* Serialize without formatting; never NULL (aborts on OOM). Caller frees with free(). */
char *json_print(const cJSON *item);

#endif
