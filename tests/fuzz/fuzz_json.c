/* fuzz_json.c: json_parse_strict on arbitrary bytes. Whatever it accepts must print to
 * text that it accepts again (and prints identically), and must convert to Lua and back
 * (every strictly valid document is representable by the json module). Its record spans
 * (json_record_spans) must match the parse: one per element of an array, or of a
 * "records" array, each itself a valid document equal to that element. */
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

/* The spans of an accepted text against its tree. */
static void
check_spans(const char *text, size_t len, const cJSON *tree)
{
    struct json_span *sp = NULL;
    long n = json_record_spans(text, len, "records", &sp);
    const cJSON *items = tree;
    long want = 1;

    if (cJSON_IsArray(tree)) {
        want = cJSON_GetArraySize(tree);
    } else if (cJSON_IsObject(tree) && cJSON_IsArray(json_get(tree, "records"))) {
        items = json_get(tree, "records");
        want = cJSON_GetArraySize(items);
    } else if (!cJSON_IsObject(tree)) {
        want = -1; /* a bare scalar is no record batch */
    }
    /* An object with a key spelt with escapes is declined (-1): the intake then keeps
     * the compact form. */
    if (n != want && !(n == -1 && cJSON_IsObject(tree) && memchr(text, '\\', len) != NULL)) {
        fuzz_die("record spans do not match the parse", text);
    }
    for (long i = 0; n == want && i < n; i++) {
        const cJSON *el =
            cJSON_IsObject(tree) && items == tree ? tree : cJSON_GetArrayItem(items, (int)i);
        cJSON *one = NULL;
        char *err = NULL, *a, *b;

        if (json_parse_strict(text + sp[i].off, sp[i].len, JSON_MAX_DEPTH, &one, &err) == -1) {
            fuzz_die("a record span is not a document", err);
        }
        a = json_print(one);
        b = json_print(el);
        if (strcmp(a, b) != 0) {
            fuzz_die("a record span differs from its element", a);
        }
        free(a);
        free(b);
        cJSON_Delete(one);
    }
    free(sp);
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
    char *err = NULL, *out, *out2;

    if (size > 0) {
        memcpy(copy, data, size);
    }
    if (json_parse_strict(copy, size, JSON_MAX_DEPTH, &tree, &err) == -1) {
        if (err == NULL || strncmp(err, "json: ", 6) != 0) {
            fuzz_die("rejection without a message", err);
        }
        free(err);
        free(copy);
        return 0;
    }
    out = json_print(tree);
    if (json_parse_strict(out, strlen(out), JSON_MAX_DEPTH, &again, &err) == -1) {
        fuzz_die("printed text rejected", err);
    }
    out2 = json_print(again);
    if (strcmp(out, out2) != 0) {
        fuzz_die("printing is not stable", out2);
    }
    lua_roundtrip(out);
    check_spans(copy, size, tree);
    free(out2);
    free(out);
    cJSON_Delete(again);
    cJSON_Delete(tree);
    free(copy);
    return 0;
}
