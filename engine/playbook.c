/* playbook.c: reading playbook files, checking their shape and matching triggers. */
#include "engine/playbook.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/bytecode.h"
#include "engine/lcheck.h"
#include "engine/log.h"

#define PLAYBOOK_MAX_BYTES (1 << 20)
#define PLAYBOOK_EVAL_INSTRUCTIONS 10000000ULL
#define LIBRARY_TOTAL_BYTES (4u << 20) /* all the libraries of one playbook */

int
playbook_lua_define(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    return 1;
}

void
playbook_ref(struct playbook *pb)
{
    pb->refs++;
}

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i]);
    }
    free(v);
}

static void
libs_free(struct playbook_lib *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].source);
    }
    free(v);
}

void
playbook_unref(struct playbook *pb)
{
    if (pb == NULL || --pb->refs > 0) {
        return;
    }
    libs_free(pb->libs, pb->nlibs);
    free(pb->name);
    free(pb->file);
    free(pb->description);
    free(pb->source);
    free_strv(pb->sources, pb->nsources);
    free_strv(pb->outcomes, pb->noutcomes);
    free(pb);
}

static struct playbook *
playbook_alloc(const char *src, size_t len)
{
    struct playbook *pb = xcalloc(1, sizeof(*pb));

    pb->refs = 1;
    pb->source = xstrndup(src, len);
    pb->len = len;
    util_sha256_hex(src, len, pb->hash);
    pb->min_severity = SEV_INFO;
    return pb;
}

static int
cmp_libs(const void *a, const void *b)
{
    return strcmp(((const struct playbook_lib *)a)->name, ((const struct playbook_lib *)b)->name);
}

/* The version: the sha256 of the source alone when the playbook uses no library (so the
 * versions of such playbooks are the hash of their file), else the sha256 of a text
 * naming the source's hash and each library's name and hash, in name order. Editing a
 * library makes a new version of every playbook that uses it. */
static void
playbook_rehash(struct playbook *pb)
{
    char h[65];
    struct buf b;

    if (pb->nlibs == 0) {
        util_sha256_hex(pb->source, pb->len, pb->hash);
        return;
    }
    if (pb->nlibs > 1) {
        qsort(pb->libs, pb->nlibs, sizeof(*pb->libs), cmp_libs);
    }
    buf_init(&b, 0);
    util_sha256_hex(pb->source, pb->len, h);
    (void)!buf_printf(&b, "kagari playbook version 1\n%s\n", h);
    for (size_t i = 0; i < pb->nlibs; i++) {
        util_sha256_hex(pb->libs[i].source, pb->libs[i].len, h);
        (void)!buf_printf(&b, "lib %s %s\n", pb->libs[i].name, h);
    }
    util_sha256_hex(b.data, b.len, pb->hash);
    buf_free(&b);
}

static int
valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 64) {
        return 0;
    }
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.')) {
            return 0;
        }
    }
    return 1;
}

/* Read a string-or-list-of-strings field at idx into a string vector. */
static int
read_strv_at(lua_State *L, int idx, const char *what, char ***out, size_t *n, char **errp)
{
    if (lua_type(L, idx) == LUA_TSTRING) {
        *out = xmalloc(sizeof(char *));
        (*out)[0] = xstrdup(lua_tostring(L, idx));
        *n = 1;
        return 0;
    }
    if (lua_type(L, idx) != LUA_TTABLE) {
        return kg_err(errp, "%s: expected a string or a list of strings", what);
    }
    *n = (size_t)lua_rawlen(L, idx);
    if (*n == 0 || *n > 256) {
        *n = 0;
        return kg_err(errp, "%s: expected 1 to 256 strings", what);
    }
    *out = xcalloc(*n, sizeof(char *));
    for (size_t i = 0; i < *n; i++) {
        int t = lua_rawgeti(L, idx, (lua_Integer)i + 1);

        if (t != LUA_TSTRING) {
            lua_pop(L, 1);
            free_strv(*out, i);
            *out = NULL;
            *n = 0;
            return kg_err(errp, "%s[%zu]: expected a string", what, i + 1);
        }
        (*out)[i] = xstrdup(lua_tostring(L, -1));
        lua_pop(L, 1);
    }
    return 0;
}

/* The same, reading a library's read-only list through the table it shows (this runs
 * unprotected: sandbox_proxy_target neither allocates nor raises). */
static int
read_strv(lua_State *L, int idx, const char *what, char ***out, size_t *n, char **errp)
{
    int shown = lua_checkstack(L, 4) && sandbox_proxy_target(L, idx);
    int rc = read_strv_at(L, shown ? lua_gettop(L) : idx, what, out, n, errp);

    if (shown) {
        lua_pop(L, 1);
    }
    return rc;
}

/* Check the table at the top of L and fill pb. Only raw access: a playbook's table may
 * carry metatables whose code we do not want to run here. */
static int
check_table(lua_State *L, struct playbook *pb, char **errp)
{
    int t = lua_gettop(L);
    static const char *const keys[] = { "name",    "description",  "on",      "run",
                                        "timeout", "instructions", "dry_run", NULL };
    static const char *const on_keys[] = { "source", "min_severity", "outcome", NULL };

    if (lcheck_unknown_key(L, t, keys)) {
        return kg_err(errp,
                      "unknown field '%s' (expected name, description, on, run, timeout, "
                      "instructions, dry_run)",
                      lua_tostring(L, -1));
    }
    if (lua_getfield(L, t, "name") != LUA_TSTRING || !valid_name(lua_tostring(L, -1))) {
        return kg_err(errp, "name: expected a string of 1-64 letters, digits, '-', '_', '.'");
    }
    pb->name = xstrdup(lua_tostring(L, -1));
    lua_pop(L, 1);
    if (lua_getfield(L, t, "run") != LUA_TFUNCTION) {
        return kg_err(errp, "run: expected a function(alert)");
    }
    lua_pop(L, 1);
    switch (lua_getfield(L, t, "description")) {
    case LUA_TNIL:
        break;
    case LUA_TSTRING:
        pb->description = xstrdup(lua_tostring(L, -1));
        break;
    default:
        return kg_err(errp, "description: expected a string");
    }
    lua_pop(L, 1);
    switch (lua_getfield(L, t, "timeout")) {
    case LUA_TNIL:
        break;
    case LUA_TNUMBER:
        pb->timeout = lua_tonumber(L, -1);
        break;
    case LUA_TSTRING:
        if (util_parse_duration(lua_tostring(L, -1), &pb->timeout) == 0) {
            break;
        }
        /* fallthrough */
    default:
        return kg_err(errp, "timeout: expected seconds or a duration such as \"15m\"");
    }
    lua_pop(L, 1);
    if (pb->timeout < 0) {
        return kg_err(errp, "timeout: must not be negative");
    }
    switch (lua_getfield(L, t, "instructions")) {
    case LUA_TNIL:
        break;
    case LUA_TNUMBER:
        if (lua_tonumber(L, -1) >= 1000 && lua_tonumber(L, -1) <= 1e12) {
            pb->instructions = (uint64_t)lua_tonumber(L, -1);
            break;
        }
        /* fallthrough */
    default:
        return kg_err(errp, "instructions: expected a number from 1000 to 1e12");
    }
    lua_pop(L, 1);

    switch (lua_getfield(L, t, "dry_run")) {
    case LUA_TNIL:
        break;
    case LUA_TBOOLEAN:
        pb->dry_run = lua_toboolean(L, -1);
        break;
    default:
        return kg_err(errp, "dry_run: expected true or false");
    }
    lua_pop(L, 1);
    if (lua_getfield(L, t, "on") != LUA_TTABLE) {
        return kg_err(errp, "on: expected a table such as { source = \"entra.signin\" }");
    }
    if (lcheck_unknown_key(L, -1, on_keys)) {
        return kg_err(errp, "on: unknown field '%s' (expected source, min_severity, outcome)",
                      lua_tostring(L, -1));
    }
    if (lua_getfield(L, -1, "source") != LUA_TNIL &&
        read_strv(L, lua_gettop(L), "on.source", &pb->sources, &pb->nsources, errp) == -1) {
        return -1;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "min_severity") != LUA_TNIL) {
        int sev = lua_type(L, -1) == LUA_TSTRING ? severity_from_name(lua_tostring(L, -1)) : -1;

        if (sev < 0) {
            return kg_err(errp, "on.min_severity: expected one of informational, low, medium, "
                                "high, critical");
        }
        pb->min_severity = sev;
    }
    lua_pop(L, 1);
    if (lua_getfield(L, -1, "outcome") != LUA_TNIL) {
        if (read_strv(L, lua_gettop(L), "on.outcome", &pb->outcomes, &pb->noutcomes, errp) == -1) {
            return -1;
        }
        for (size_t i = 0; i < pb->noutcomes; i++) {
            if (outcome_valid(pb->outcomes[i]) == -1) {
                return kg_err(errp,
                              "on.outcome: '%s' is not one of unknown, blocked, attempted, "
                              "succeeded",
                              pb->outcomes[i]);
            }
        }
    }
    lua_pop(L, 2);
    return 0;
}

/* Protected: give the environment at index 1 the version's require (lightuserdata 2) and
 * return it. */
struct parse_ctx {
    struct sandbox *sb;
    struct playbook *pb;
};

static int
l_parse_set_require(lua_State *L)
{
    struct parse_ctx *c = lua_touserdata(L, 2);

    library_push_require(L, c->sb, c->pb->hash, c->pb->libs, c->pb->nlibs);
    lua_pushvalue(L, -1);
    lua_setfield(L, 1, "require");
    return 1;
}

/* Evaluate pb's source (its libraries and version already set) and check its table. Each
 * library is then required once, so that one failing fails the playbook even when only
 * run() requires it. Consumes pb on failure. */
static struct playbook *
parse_common(struct sandbox *sb, struct playbook *pb, const char *file, char **errp)
{
    lua_State *L = sandbox_state(sb);
    struct sandbox_task task;
    const char *base = strrchr(file, '/');
    char *chunkname = xasprintf("@%s", base ? base + 1 : file);
    char *err = NULL;
    int top = lua_gettop(L), env, req = 0;
    struct parse_ctx ctx = { sb, pb };

    pb->file = xstrdup(file);
    memset(&task, 0, sizeof(task));
    task.max_instructions = PLAYBOOK_EVAL_INSTRUCTIONS;
    task.deadline_ms = util_now_ms() + 5000;
    sandbox_task_attach(L, &task);
    sandbox_push_env(sb, L);
    env = lua_gettop(L);
    if (pb->nlibs > 0) {
        lua_pushcfunction(L, l_parse_set_require);
        lua_pushvalue(L, env);
        lua_pushlightuserdata(L, &ctx);
        if (lua_pcall(L, 2, 1, 0) != LUA_OK) {
            kg_err(errp, "%s: %s", file, lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
            goto fail;
        }
        req = lua_gettop(L); /* kept: the file may replace its global require */
    }
    if (sandbox_load(L, pb->source, pb->len, chunkname, env, &err) == -1) {
        kg_err(errp, "%s", err);
        goto fail;
    }
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
        char *msg = sandbox_error_message(L);

        kg_err(errp, "%s", msg);
        free(msg);
        goto fail;
    }
    if (!lua_istable(L, -1)) {
        kg_err(errp,
               "%s: the file must end with: return playbook{ name = ..., on = {...}, "
               "run = function(alert) ... end }",
               file);
        goto fail;
    }
    if (check_table(L, pb, &err) == -1) {
        kg_err(errp, "%s: %s", file, err);
        goto fail;
    }
    for (size_t i = 0; i < pb->nlibs; i++) {
        lua_pushvalue(L, req);
        lua_pushstring(L, pb->libs[i].name);
        if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
            char *msg = sandbox_error_message(L);

            kg_err(errp, "%s: %s", file, msg);
            free(msg);
            goto fail;
        }
    }
    lua_settop(L, top);
    sandbox_task_attach(L, NULL);
    free(chunkname);
    free(err);
    return pb;
fail:
    lua_settop(L, top);
    sandbox_task_attach(L, NULL);
    free(chunkname);
    free(err);
    playbook_unref(pb);
    return NULL;
}

struct playbook *
playbook_parse_libs(struct sandbox *sb, const char *file, const char *src, size_t len,
                    const struct playbook_lib *libs, size_t nlibs, char **errp)
{
    struct playbook *pb = playbook_alloc(src, len);

    if (nlibs > 0) {
        pb->libs = xcalloc(nlibs, sizeof(*pb->libs));
        for (size_t i = 0; i < nlibs; i++) {
            pb->libs[i].name = xstrdup(libs[i].name);
            pb->libs[i].source = xstrndup(libs[i].source, libs[i].len);
            pb->libs[i].len = libs[i].len;
        }
        pb->nlibs = nlibs;
        playbook_rehash(pb);
    }
    return parse_common(sb, pb, file, errp);
}

static char *playbook_read_at(int dfd, const char *name, const char *path, size_t *len,
                              char **errp);

/* Finding the libraries of a playbook: the require calls with a constant name in its
 * compiled code, then in each library's, read from one folder. */
struct resolve {
    lua_State *L;
    struct playbook *pb;
    const char *lib_dir;
    int dfd; /* the library folder, opened at the first require; -1 before */
    size_t total;
    int top_syntax; /* the playbook itself does not compile */
};

static int resolve_chunk(struct resolve *rs, const char *src, size_t len, const char *shown,
                         int top, char **errp);

static int
resolve_one(struct resolve *rs, const char *name, const char *shown, int line, char **errp)
{
    char *fname, *path, *err = NULL, *src;
    struct playbook_lib *lib;
    struct stat st;
    size_t len = 0;
    int rc;

    for (size_t i = 0; i < rs->pb->nlibs; i++) {
        if (strcmp(rs->pb->libs[i].name, name) == 0) {
            return 0;
        }
    }
    if (!library_name_valid(name)) {
        return kg_err(errp,
                      "%s:%d: require '%s': not a library name (1 to 64 letters, digits, '-', "
                      "'_'; no dots or slashes)",
                      shown, line, name);
    }
    if (rs->pb->nlibs >= LIBRARY_MAX) {
        return kg_err(errp, "%s:%d: require '%s': more than %d libraries", shown, line, name,
                      LIBRARY_MAX);
    }
    if (rs->dfd == -1) {
        rs->dfd = open(rs->lib_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (rs->dfd == -1) {
            return kg_err(errp, "%s:%d: require '%s': cannot open the library folder %s: %s", shown,
                          line, name, rs->lib_dir,
                          errno == ELOOP || errno == ENOTDIR ? "not a directory (or a link)"
                                                             : strerror(errno));
        }
    }
    fname = xasprintf("%s.lua", name);
    path = xasprintf("%s/%s", rs->lib_dir, fname);
    if (fstatat(rs->dfd, fname, &st, AT_SYMLINK_NOFOLLOW) == -1 && errno == ENOENT) {
        kg_err(errp, "%s:%d: require '%s': no library %s", shown, line, name, path);
        free(fname);
        free(path);
        return -1;
    }
    src = playbook_read_at(rs->dfd, fname, path, &len, &err);
    free(fname);
    free(path);
    if (src == NULL) {
        kg_err(errp, "%s:%d: require '%s': %s", shown, line, name, err);
        free(err);
        return -1;
    }
    rs->total += len;
    if (rs->total > LIBRARY_TOTAL_BYTES) {
        free(src);
        return kg_err(errp, "%s:%d: require '%s': the libraries are larger than %u bytes in all",
                      shown, line, name, LIBRARY_TOTAL_BYTES);
    }
    rs->pb->libs = xrealloc(rs->pb->libs, (rs->pb->nlibs + 1) * sizeof(*rs->pb->libs));
    lib = &rs->pb->libs[rs->pb->nlibs++];
    lib->name = xstrdup(name);
    lib->source = src;
    lib->len = len;
    path = xasprintf("lib/%s.lua", name);
    rc = resolve_chunk(rs, src, len, path, 0, errp);
    free(path);
    return rc;
}

static int
resolve_chunk(struct resolve *rs, const char *src, size_t len, const char *shown, int top,
              char **errp)
{
    struct bytecode_proto *p;
    struct bytecode_require *req;
    char *chunk = xasprintf("@%s", shown);
    size_t n;
    int rc = 0;

    if (bytecode_compile(rs->L, src, len, chunk, &p, errp) == -1) {
        rs->top_syntax = top;
        free(chunk);
        return -1;
    }
    free(chunk);
    n = bytecode_requires(p, &req);
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = resolve_one(rs, req[i].name, shown, req[i].line, errp);
    }
    bytecode_requires_free(req, n);
    bytecode_free(p);
    return rc;
}

struct playbook *
playbook_parse_dir(struct sandbox *sb, const char *file, const char *src, size_t len,
                   const char *lib_dir, char **errp)
{
    struct playbook *pb = playbook_alloc(src, len);
    const char *base = strrchr(file, '/');
    char *dir = NULL;
    struct resolve rs;
    char *err = NULL;

    if (lib_dir == NULL) {
        dir = base != NULL ? xasprintf("%.*s/lib", (int)(base - file), file) : xstrdup("lib");
        lib_dir = dir;
    }
    rs.L = sandbox_state(sb);
    rs.pb = pb;
    rs.lib_dir = lib_dir;
    rs.dfd = -1;
    rs.total = 0;
    rs.top_syntax = 0;
    /* A syntax error in the playbook itself is left to the evaluation, which reports it. */
    if (resolve_chunk(&rs, src, len, file, 1, &err) == -1 && !rs.top_syntax) {
        if (strncmp(err, file, strlen(file)) == 0) {
            kg_err(errp, "%s", err);
        } else {
            kg_err(errp, "%s: %s", file, err);
        }
        free(err);
        free(dir);
        if (rs.dfd != -1) {
            close(rs.dfd);
        }
        playbook_unref(pb);
        return NULL;
    }
    free(err);
    free(dir);
    if (rs.dfd != -1) {
        close(rs.dfd);
    }
    playbook_rehash(pb);
    return parse_common(sb, pb, file, errp);
}

struct playbook *
playbook_parse(struct sandbox *sb, const char *file, const char *src, size_t len, char **errp)
{
    return playbook_parse_dir(sb, file, src, len, NULL, errp);
}

/* Why st is not a file we load, or NULL when it is a regular file. */
static const char *
playbook_refusal(const struct stat *st)
{
    if (S_ISREG(st->st_mode)) {
        return NULL;
    }
    if (S_ISLNK(st->st_mode)) {
        return "a symbolic link (playbooks must be regular files in the folder)";
    }
    if (S_ISDIR(st->st_mode)) {
        return "a directory";
    }
    if (S_ISFIFO(st->st_mode)) {
        return "a FIFO";
    }
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode)) {
        return "a device";
    }
    return "not a regular file";
}

/* Read the playbook file name of the folder open as dfd (path is its name for messages).
 * Only a regular file that lies in the folder itself is read: it is looked at without
 * following links, opened with O_NOFOLLOW (and O_NONBLOCK, so that a FIFO swapped in
 * cannot block us), and the opened descriptor is checked again, so a file swapped in
 * between the look and the open is refused too. A refused file is never read: its
 * message names the file and the reason only. Returns the text (the caller frees it)
 * or NULL and *errp. */
static char *
playbook_read_at(int dfd, const char *name, const char *path, size_t *len, char **errp)
{
    struct stat st, fst;
    const char *why;
    struct buf b;
    char chunk[16384];
    int fd;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == -1) {
        kg_err(errp, "%s: refused: %s", path, strerror(errno));
        return NULL;
    }
    if ((why = playbook_refusal(&st)) != NULL) {
        kg_err(errp, "%s: refused: %s", path, why);
        return NULL;
    }
    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd == -1) {
        kg_err(errp, "%s: refused: %s", path,
               errno == ELOOP ? "a symbolic link (playbooks must be regular files in the folder)"
                              : strerror(errno));
        return NULL;
    }
    if (fstat(fd, &fst) == -1 || (why = playbook_refusal(&fst)) != NULL ||
        fst.st_dev != st.st_dev || fst.st_ino != st.st_ino) {
        kg_err(errp, "%s: refused: %s", path, why ? why : "replaced while being opened");
        close(fd);
        return NULL;
    }
    buf_init(&b, PLAYBOOK_MAX_BYTES);
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n == 0) {
            break;
        }
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            kg_err(errp, "%s: refused: %s", path, strerror(errno));
            goto fail;
        }
        if (buf_append(&b, chunk, (size_t)n) == -1) {
            kg_err(errp, "%s: refused: larger than %d bytes", path, PLAYBOOK_MAX_BYTES);
            goto fail;
        }
    }
    close(fd);
    *len = b.len;
    return buf_take(&b);
fail:
    close(fd);
    buf_free(&b);
    return NULL;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct playbook *
playbook_load_file(struct sandbox *sb, const char *path, const char *lib_dir, char **errp)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? xstrndup(path, (size_t)(slash - path)) : xstrdup(".");
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct playbook *pb = NULL;
    size_t len = 0;
    char *src;

    if (dfd == -1) {
        kg_err(errp, "%s: cannot read the folder %s: %s", path, dir, strerror(errno));
        free(dir);
        return NULL;
    }
    src = playbook_read_at(dfd, slash ? slash + 1 : path, path, &len, errp);
    if (src != NULL) {
        pb = playbook_parse_dir(sb, path, src, len, lib_dir, errp);
    }
    free(src);
    close(dfd);
    free(dir);
    return pb;
}

int
playbook_set_load(struct sandbox *sb, const char *dir, struct playbook_set *set, char **errs)
{
    return playbook_set_load_libs(sb, dir, NULL, set, errs);
}

int
playbook_set_load_libs(struct sandbox *sb, const char *dir, const char *lib_dir,
                       struct playbook_set *set, char **errs)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **names = NULL;
    size_t n = 0;
    struct buf eb;

    set->v = NULL;
    set->n = 0;
    if (d == NULL) {
        return kg_err(errs, "%s: cannot read the playbook folder", dir);
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);

        /* NAME_test.lua beside a playbook is its test file (kagari playbook test). */
        if (de->d_name[0] != '.' && l > 4 && strcmp(de->d_name + l - 4, ".lua") == 0 &&
            !(l > 9 && strcmp(de->d_name + l - 9, "_test.lua") == 0)) {
            names = xrealloc(names, (n + 1) * sizeof(char *));
            names[n++] = xstrdup(de->d_name);
        }
    }
    if (n > 1) {
        qsort(names, n, sizeof(char *), cmp_names);
    }
    buf_init(&eb, 0);
    set->v = xcalloc(n ? n : 1, sizeof(struct playbook *));
    for (size_t i = 0; i < n; i++) {
        char *path = xasprintf("%s/%s", dir, names[i]);
        char *err = NULL;
        size_t len = 0;
        char *src = playbook_read_at(dirfd(d), names[i], path, &len, &err);
        struct playbook *pb = src ? playbook_parse_dir(sb, path, src, len, lib_dir, &err) : NULL;

        for (size_t j = 0; pb != NULL && j < set->n; j++) {
            if (strcmp(set->v[j]->name, pb->name) == 0) {
                kg_err(&err, "%s: playbook name '%s' is already used by %s", path, pb->name,
                       set->v[j]->file);
                playbook_unref(pb);
                pb = NULL;
            }
        }
        if (pb != NULL) {
            set->v[set->n++] = pb;
        } else {
            (void)!buf_printf(&eb, "%s\n", err ? err : path);
        }
        free(err);
        free(src);
        free(path);
        free(names[i]);
    }
    closedir(d);
    free(names);
    if (errs != NULL && eb.len > 0) {
        free(*errs);
        *errs = buf_take(&eb);
    }
    buf_free(&eb);
    return 0;
}

void
playbook_set_free(struct playbook_set *set)
{
    for (size_t i = 0; i < set->n; i++) {
        playbook_unref(set->v[i]);
    }
    free(set->v);
    set->v = NULL;
    set->n = 0;
}

int
playbook_matches(const struct playbook *pb, const struct alert *a)
{
    int ok;

    if (a->severity < pb->min_severity) {
        return 0;
    }
    if (pb->nsources > 0) {
        ok = 0;
        for (size_t i = 0; i < pb->nsources && !ok; i++) {
            const char *s = pb->sources[i];
            size_t l = strlen(s);

            if (l > 0 && s[l - 1] == '*') {
                ok = strncmp(a->source, s, l - 1) == 0;
            } else {
                ok = strcmp(a->source, s) == 0;
            }
        }
        if (!ok) {
            return 0;
        }
    }
    if (pb->noutcomes > 0) {
        ok = 0;
        for (size_t i = 0; i < pb->noutcomes && !ok; i++) {
            ok = strcmp(a->outcome, pb->outcomes[i]) == 0;
        }
        if (!ok) {
            return 0;
        }
    }
    return 1;
}
