/* fuzz_lint.c: the deep lint on arbitrary text. A chunk compiles or not; a compiled one is
 * read back from its dump and analysed, and either way nothing may crash, leak or hang:
 * every finding has a message and a line within the text. */
#include "engine/lint.h"

#include <lauxlib.h>
#include <stdint.h>
#include <stdlib.h>

#include "engine/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct apidesc api;
    static int loaded;
    struct lint_report r = { NULL, 0 };
    char *err = NULL;
    lua_State *L;
    int lines = 1;

    if (!loaded) {
        registry_init();
        if (apidesc_load(&api, &err) == -1) {
            abort();
        }
        loaded = 1;
    }
    for (size_t i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }
    L = luaL_newstate();
    for (int flags = 0; flags <= LINT_LIBRARY; flags++) {
        if (lint_chunk(&api, L, "fuzz.lua", (const char *)data, size, flags, &r, &err) == -1 &&
            err == NULL) {
            abort(); /* every failure has a message */
        }
        for (size_t i = 0; i < r.n; i++) {
            if (r.v[i].msg == NULL || r.v[i].line < 0 || r.v[i].line > lines || r.v[i].col < 1) {
                abort();
            }
        }
        lint_report_free(&r);
        free(err);
        err = NULL;
    }
    lua_close(L);
    return 0;
}
