/* test_apidesc.c: the playbook API description: read from the real environment, its metadata
 * table in step with it, and the LuaLS annotations covering every registered function
 * (the shipped copy included). */
#include "engine/apidesc.h"

#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/env.h"
#include "engine/registry.h"
#include "engine/sandbox.h"
#include "tests/unit/test.h"

static void
load(struct apidesc *api)
{
    char *err = NULL;

    registry_init();
    if (apidesc_load(api, &err) == -1) {
        T_FAIL_("apidesc_load: %s", err);
    }
    free(err);
}

static void
test_description(void)
{
    struct apidesc api;
    const struct apidesc_entry *e;
    char *err = NULL;

    load(&api);
    e = apidesc_find(&api, "defender.isolate");
    T_REQUIRE(e != NULL);
    T_EQ_INT(e->kind, APIDESC_FUNCTION);
    T_EQ_INT(e->connector, 1);
    T_EQ_INT(e->nil_err, 1);
    T_EQ_INT(e->min_args, 1);
    T_EQ_INT(e->max_args, 3);
    e = apidesc_find(&api, "log.info");
    T_REQUIRE(e != NULL);
    T_EQ_INT(e->nil_err, 0);
    T_EQ_INT(e->max_args, -1);
    T_ASSERT(apidesc_find(&api, "json.null") != NULL &&
             apidesc_find(&api, "json.null")->kind == APIDESC_VALUE);
    T_ASSERT(apidesc_find(&api, "string.format") != NULL &&
             apidesc_find(&api, "string.format")->standard);
    T_ASSERT(apidesc_find(&api, "string.dump") == NULL); /* the sandbox removed it */
    T_ASSERT(apidesc_find(&api, "io") == NULL && apidesc_find(&api, "os") == NULL);
    T_ASSERT(apidesc_has_method(&api, "observable") && apidesc_has_method(&api, "values"));
    T_ASSERT(apidesc_source_known(&api, "defender.alert"));
    T_EQ_STR(apidesc_suggest(&api, "defender", "isolat", 0), "isolate");
    T_EQ_STR(apidesc_suggest(&api, NULL, "entra.signn", 1), "entra.signin");
    /* The source names docs/playbooks.md lists are those the registered sources and
     * normalizer families give: each one is in its table. */
    {
        size_t dlen = 0;
        char *doc = util_read_file("docs/playbooks.md", 4u << 20, &dlen, NULL);

        T_REQUIRE(doc != NULL);
        for (size_t i = 0; i < api.nsources; i++) {
            char *want = xasprintf("`%s`", api.sources[i]);

            if (strstr(doc, want) == NULL) {
                T_FAIL_("docs/playbooks.md does not list the source name %s", api.sources[i]);
            }
            free(want);
        }
        free(doc);
        T_ASSERT(apidesc_source_known(&api, "defender.incident")); /* a family's name */
    }
    /* Every row of the metadata table names a registered function. */
    if (apidesc_check_meta(&api, &err) == -1) {
        T_FAIL_("%s", err);
    }
    free(err);
    apidesc_free(&api);
}

/* Every function a fresh playbook environment has (kagari's own, not standard Lua's) is
 * in the generated annotations, found by walking the environment here, not through the
 * description. */
static void
test_annotations_cover_every_function(void)
{
    struct apidesc api;
    char dir[64], *path, *text, *err = NULL, *shipped;
    size_t len = 0, slen = 0;
    struct sandbox *sb;
    lua_State *L;
    int n = 0;
    static const char *const standard[] = { "assert",   "error",        "getmetatable", "ipairs",
                                            "math",     "next",         "pairs",        "pcall",
                                            "rawequal", "rawget",       "rawlen",       "rawset",
                                            "select",   "setmetatable", "string",       "table",
                                            "tonumber", "tostring",     "type",         "utf8",
                                            "xpcall",   "_G",           "_VERSION",     NULL };

    load(&api);
    snprintf(dir, sizeof(dir), "/tmp/kagari-test-ann-XXXXXX");
    T_REQUIRE(mkdtemp(dir) != NULL);
    T_REQUIRE(apidesc_write_annotations(&api, dir, &err) == 0);
    path = xasprintf("%s/.luals/kagari.lua", dir);
    text = util_read_file(path, 1 << 20, &len, &err);
    T_REQUIRE(text != NULL);
    T_ASSERT(strncmp(text, "---@meta\n", 9) == 0);
    sb = env_sandbox_new(16u << 20, &err);
    T_REQUIRE(sb != NULL);
    L = sandbox_state(sb);
    sandbox_push_globals(sb);
    lua_pushnil(L);
    while (lua_next(L, -2) != 0) {
        const char *g = lua_tostring(L, -2);
        int std = 0;

        for (size_t i = 0; standard[i] != NULL; i++) {
            std |= strcmp(standard[i], g) == 0;
        }
        if (!std && lua_type(L, -1) == LUA_TFUNCTION) {
            char *want = xasprintf("\nfunction %s(", g);

            if (strstr(text, want) == NULL) {
                T_FAIL_("no annotation for %s()", g);
            }
            n++;
            free(want);
        } else if (!std && lua_type(L, -1) == LUA_TTABLE) {
            /* a read-only proxy: its functions are in the table it reads through to */
            T_REQUIRE(lua_getmetatable(L, -1));
            T_REQUIRE(lua_getfield(L, -1, "__index") == LUA_TTABLE);
            lua_pushnil(L);
            while (lua_next(L, -2) != 0) {
                if (lua_type(L, -1) == LUA_TFUNCTION) {
                    char *want = xasprintf("\nfunction %s.%s(", g, lua_tostring(L, -2));

                    if (strstr(text, want) == NULL) {
                        T_FAIL_("no annotation for %s.%s()", g, lua_tostring(L, -2));
                    }
                    n++;
                    free(want);
                }
                lua_pop(L, 1);
            }
            lua_pop(L, 2);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
    T_ASSERT(n >= 40); /* built-ins and every connector's functions */
    /* The shipped copy is the one the engine writes: regenerate it with
     * `kagari playbook annotations playbooks` after adding a function. */
    shipped = util_read_file("playbooks/.luals/kagari.lua", 1 << 20, &slen, NULL);
    if (shipped == NULL || slen != len || memcmp(shipped, text, len) != 0) {
        T_FAIL_("playbooks/.luals/kagari.lua is not what `kagari playbook annotations "
                "playbooks` writes now: run it and commit the result");
    }
    free(shipped);
    sandbox_free(sb);
    free(text);
    free(path);
    path = xasprintf("rm -rf %s", dir);
    T_ASSERT(system(path) == 0);
    free(path);
    free(err);
    apidesc_free(&api);
}

TEST_LIST = {
    { "description", test_description },
    { "annotations_cover_every_function", test_annotations_cover_every_function },
    { NULL, NULL },
};
