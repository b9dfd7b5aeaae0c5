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

/* Where the records of a batch are in a text json_parse_strict accepted: the elements
 * of a top-level array; the elements of the array value of the top-level object's member
 * named member; else the whole top-level object. Each span is [off, off + len) of text,
 * whitespace around it left out. Returns the number of spans (in *out, malloc'd; the
 * caller frees it), or -1 when the text is not such a document or the object has a key
 * written with escapes (which might decode to member). */
struct json_span {
    size_t off, len;
};
long json_record_spans(const char *text, size_t len, const char *member, struct json_span **out);

/* Case-sensitive member lookup (cJSON_GetObjectItem ignores case). NULL if absent. */
cJSON *json_get(const cJSON *obj, const char *key);
/* The member's string value if it is a string, else NULL. */
const char *json_get_string(const cJSON *obj, const char *key);

/* Serialize without formatting; never NULL (aborts on OOM). Caller frees with free(). */
char *json_print(const cJSON *item);

#endif
