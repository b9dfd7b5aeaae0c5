/* fuzz_json.c: json_parse_strict on arbitrary bytes. Whatever it accepts must print to
 * text that it accepts again (and prints identically), and must convert to Lua and back
 * (every strictly valid document is representable by the json module). The one-pass
 * parser of the intake (json_doc_parse) must agree: the same texts accepted (built by
 * itself, into an equal tree) and refused (with the same message). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "engine/json.h"
#include "engine/ljson.h"
#include "engine/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Stop the run loudly: the fuzzer (or the replay) reports the crash with the input. */
static void
fuzz_die(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_json: %s: %s\n", what, detail != NULL ? detail : "");
    abort();
}

/* Decode text into a fresh Lua state and encode it back; both must succeed and the
 * result must again be strictly valid JSON. */
static void
lua_roundtrip(const char *text)
{
    lua_State *L = luaL_newstate();
    char *err = NULL, *out;
    cJSON *tree, *again = NULL;

    if (L == NULL) {
        return;
    }
    if (ljson_push_text(L, text, strlen(text)) == -1) {
        fuzz_die("printed text not accepted by ljson_push_text", lua_tostring(L, -1));
    }
    tree = ljson_from_lua(L, -1, &err);
    if (tree == NULL) {
        fuzz_die("decoded value not encodable", err);
    }
    out = json_print(tree);
    if (json_parse_strict(out, strlen(out), JSON_MAX_DEPTH, &again, &err) == -1) {
        fuzz_die("Lua-encoded text rejected", err);
    }
    cJSON_Delete(again);
    cJSON_Delete(tree);
    free(out);
    lua_close(L);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so any read past the end is caught by ASan. */
    char *copy = xmalloc(size ? size : 1);
    cJSON *tree = NULL, *again = NULL;
    struct json_doc *doc = NULL;
    char *err = NULL, *derr = NULL, *out, *out2;
    int rc;

    if (size > 0) {
        memcpy(copy, data, size);
    }
    rc = json_parse_strict(copy, size, JSON_MAX_DEPTH, &tree, &err);
    if (json_doc_parse(copy, size, JSON_MAX_DEPTH, &doc, &derr) != rc) {
        fuzz_die("json_doc_parse disagrees", rc == 0 ? derr : err);
    }
    if (rc == -1) {
        if (err == NULL || strncmp(err, "json: ", 6) != 0) {
            fuzz_die("rejection without a message", err);
        }
        if (derr == NULL || strcmp(err, derr) != 0) {
            fuzz_die("json_doc_parse's message differs", derr);
        }
        free(derr);
        free(err);
        free(copy);
        return 0;
    }
    if (!json_doc_in_arena(doc) || !cJSON_Compare(tree, json_doc_root(doc), 1)) {
        fuzz_die("json_doc_parse built another tree (or declined)", copy);
    }
    {
        /* The records' bytes noted by the one pass are those the scan of the text finds. */
        const char *key = cJSON_IsObject(tree) ? "records" : NULL;
        const cJSON *arr = key != NULL ? json_get(json_doc_root(doc), key) : json_doc_root(doc);
        struct json_span *want = NULL;
        const struct json_span *got = NULL;
        long n = json_array_spans(copy, size, key, &want);

        if (n >= 0 && (json_doc_spans(doc, arr, &got) != n ||
                       (n > 0 && memcmp(got, want, (size_t)n * sizeof(*want)) != 0))) {
            fuzz_die("json_doc_spans differs from json_array_spans", copy);
        }
        free(want);
    }
    json_doc_free(doc);
    out = json_print(tree);
    if (json_parse_strict(out, strlen(out), JSON_MAX_DEPTH, &again, &err) == -1) {
        fuzz_die("printed text rejected", err);
    }
    out2 = json_print(again);
    if (strcmp(out, out2) != 0) {
        fuzz_die("printing is not stable", out2);
    }
    lua_roundtrip(out);
    free(out2);
    free(out);
    cJSON_Delete(again);
    cJSON_Delete(tree);
    free(copy);
    return 0;
}
