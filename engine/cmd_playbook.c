/* cmd_playbook.c: `kagari playbook lint` (the declaration, evaluated in the sandbox, and
 * the deep lint of the code and its libraries against the real API), `kagari playbook
 * test` (run the playbooks' own tests, engine/ptest.c) and `kagari playbook annotations`
 * (LuaLS files for editors, written from the same API description). */
#include "engine/cmd.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/apidesc.h"
#include "engine/config.h"
#include "engine/env.h"
#include "engine/lint.h"
#include "engine/playbook.h"
#include "engine/ptest.h"
#include "engine/sandbox.h"

struct lint_opts {
    const char *lib_dir;
    char **sources; /* extra known source names */
    size_t nsources;
    int verbose;        /* test: list every check */
    const char *config; /* test: the configuration naming the playbook folder */
    const char *tenant; /* history: one tenant only */
};

static int
cmd_playbook_opt(int c, const char *arg, void *ud)
{
    struct lint_opts *o = ud;

    switch (c) {
    case 'l':
        o->lib_dir = arg;
        return 0;
    case 's':
        o->sources = xrealloc(o->sources, (o->nsources + 1) * sizeof(char *));
        o->sources[o->nsources++] = xstrdup(arg);
        return 0;
    case 'v':
        o->verbose = 1;
        return 0;
    case 'c':
        o->config = arg;
        return 0;
    case 't':
        o->tenant = arg;
        return 0;
    default:
        return -1;
    }
}

static int
cmp_findings(const void *a, const void *b)
{
    const struct lint_finding *x = a, *y = b;

    if (x->line != y->line) {
        return x->line < y->line ? -1 : 1;
    }
    return x->col < y->col ? -1 : x->col > y->col;
}

static int
print_findings(const char *path, struct lint_report *r)
{
    int problems = 0;

    if (r->n > 1) {
        qsort(r->v, r->n, sizeof(*r->v), cmp_findings);
    }
    for (size_t i = 0; i < r->n; i++) {
        printf("%s:%d:%d: %s%s\n", path, r->v[i].line, r->v[i].col, r->v[i].note ? "note: " : "",
               r->v[i].msg);
        problems += !r->v[i].note;
    }
    return problems;
}

/* The linted libraries, so that one shared by several playbooks is reported once. */
struct seen {
    char **v;
    size_t n;
};

static int
seen_add(struct seen *s, const char *key)
{
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->v[i], key) == 0) {
            return 0;
        }
    }
    s->v = xrealloc(s->v, (s->n + 1) * sizeof(char *));
    s->v[s->n++] = xstrdup(key);
    return 1;
}

/* Lint one playbook file and the libraries it uses. Returns the number of problems. */
static int
lint_file(struct sandbox *sb, const struct apidesc *api, const char *path, const char *lib_dir,
          struct seen *seen)
{
    lua_State *L = sandbox_state(sb);
    char *err = NULL, *libs = NULL;
    struct playbook *pb = playbook_load_file(sb, path, lib_dir, &err);
    struct lint_report r = { NULL, 0 };
    size_t len = 0;
    char *src = util_read_file(path, 1 << 20, &len, NULL);
    int bad = 0;

    if (pb == NULL) {
        fprintf(stdout, "%s\n", err ? err : path);
        bad++;
    }
    free(err);
    err = NULL;
    if (src != NULL && lint_chunk(api, L, path, src, len, 0, &r, &err) == 0) {
        for (size_t i = 0; pb != NULL && i < pb->nsources; i++) {
            if (!apidesc_source_known(api, pb->sources[i])) {
                lint_trigger(api, src, len, pb->sources[i], &r);
            }
        }
        bad += print_findings(path, &r);
    }
    lint_report_free(&r);
    free(err);
    err = NULL;
    if (lib_dir == NULL) {
        const char *slash = strrchr(path, '/');

        libs = slash ? xasprintf("%.*s/lib", (int)(slash - path), path) : xstrdup("lib");
        lib_dir = libs;
    }
    for (size_t i = 0; pb != NULL && i < pb->nlibs; i++) {
        char *lp = xasprintf("%s/%s.lua", lib_dir, pb->libs[i].name);

        if (seen_add(seen, lp) && lint_chunk(api, L, lp, pb->libs[i].source, pb->libs[i].len,
                                             LINT_LIBRARY, &r, &err) == 0) {
            bad += print_findings(lp, &r);
        }
        lint_report_free(&r);
        free(err);
        err = NULL;
        free(lp);
    }
    if (pb != NULL && bad == 0) {
        printf("%s: ok: playbook %s (version %.12s", path, pb->name, pb->hash);
        for (size_t i = 0; i < pb->nlibs; i++) {
            printf("%s%s", i ? ", " : "; libraries ", pb->libs[i].name);
        }
        printf(")\n");
    }
    free(libs);
    free(src);
    playbook_unref(pb);
    return bad;
}

static int
cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The *.lua files of a folder, in name order (the playbooks the daemon would load). */
static char **
folder_files(const char *dir, size_t *n)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    char **v = NULL;

    *n = 0;
    if (d == NULL) {
        return NULL;
    }
    while ((de = readdir(d)) != NULL) {
        size_t l = strlen(de->d_name);

        /* *_test.lua files are playbook tests, not playbooks */
        if (de->d_name[0] != '.' && l > 4 && strcmp(de->d_name + l - 4, ".lua") == 0 &&
            !(l > 9 && strcmp(de->d_name + l - 9, "_test.lua") == 0)) {
            v = xrealloc(v, (*n + 1) * sizeof(char *));
            v[(*n)++] = xasprintf("%s/%s", dir, de->d_name);
        }
    }
    closedir(d);
    if (*n > 1) {
        qsort(v, *n, sizeof(char *), cmp_names);
    }
    return v;
}

/* Lint one library file (once). Returns the number of problems. */
static int
lint_library(struct sandbox *sb, const struct apidesc *api, const char *path, struct seen *seen)
{
    struct lint_report r = { NULL, 0 };
    size_t len = 0;
    char *err = NULL;
    char *src;
    int bad = 0;

    if (!seen_add(seen, path)) {
        return 0;
    }
    src = util_read_file(path, 1 << 20, &len, &err);
    if (src == NULL ||
        lint_chunk(api, sandbox_state(sb), path, src, len, LINT_LIBRARY, &r, &err) == -1) {
        printf("%s\n", err ? err : path);
        bad++;
    } else {
        bad += print_findings(path, &r);
        if (bad == 0) {
            printf("%s: ok: library\n", path);
        }
    }
    lint_report_free(&r);
    free(err);
    free(src);
    return bad;
}

/* Is path a library file: in a folder named lib, or in lib_dir? */
static int
is_library_path(const char *path, const char *lib_dir)
{
    const char *slash = strrchr(path, '/');
    size_t dl = slash ? (size_t)(slash - path) : 0;

    if (lib_dir != NULL) {
        size_t ll = strlen(lib_dir);

        while (ll > 1 && lib_dir[ll - 1] == '/') {
            ll--;
        }
        return slash != NULL && dl == ll && strncmp(path, lib_dir, ll) == 0;
    }
    return slash != NULL && dl >= 3 && strncmp(slash - 3, "lib", 3) == 0 &&
           (dl == 3 || slash[-4] == '/');
}

/* The libraries of a playbook folder that no playbook linted so far uses: linted too, so
 * that a library is checked before its first user is written. */
static int
lint_unused_libs(struct sandbox *sb, const struct apidesc *api, const char *dir,
                 const char *lib_dir, struct seen *seen)
{
    char *own = lib_dir ? NULL : xasprintf("%s/lib", dir);
    size_t n;
    char **files = folder_files(lib_dir ? lib_dir : own, &n);
    int bad = 0;

    for (size_t k = 0; k < n; k++) {
        bad += lint_library(sb, api, files[k], seen);
        free(files[k]);
    }
    free(files);
    free(own);
    return bad;
}

static int
cmd_lint(int argc, char **argv, const struct lint_opts *o)
{
    struct sandbox *sb;
    struct apidesc api;
    struct seen seen = { NULL, 0 };
    char *err = NULL;
    int bad = 0;

    if (apidesc_load(&api, &err) == -1 || (sb = env_sandbox_new(64u << 20, &err)) == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    for (size_t i = 0; i < o->nsources; i++) {
        api.sources = xrealloc(api.sources, (api.nsources + 1) * sizeof(char *));
        api.sources[api.nsources++] = xstrdup(o->sources[i]);
    }
    for (int i = 0; i < argc; i++) {
        struct stat st;

        if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
            size_t n;
            char **files = folder_files(argv[i], &n);

            for (size_t k = 0; k < n; k++) {
                bad += lint_file(sb, &api, files[k], o->lib_dir, &seen);
                free(files[k]);
            }
            free(files);
            bad += lint_unused_libs(sb, &api, argv[i], o->lib_dir, &seen);
        } else if (is_library_path(argv[i], o->lib_dir)) {
            bad += lint_library(sb, &api, argv[i], &seen);
        } else {
            bad += lint_file(sb, &api, argv[i], o->lib_dir, &seen);
        }
    }
    for (size_t i = 0; i < seen.n; i++) {
        free(seen.v[i]);
    }
    free(seen.v);
    sandbox_free(sb);
    apidesc_free(&api);
    if (bad > 0) {
        fprintf(stderr, "kagari: %d problem%s\n", bad, bad == 1 ? "" : "s");
    }
    return bad ? 1 : 0;
}

static int
cmd_annotations(const char *dir)
{
    struct apidesc api;
    char *err = NULL;
    int rc;

    if (apidesc_load(&api, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    rc = apidesc_write_annotations(&api, dir, &err);
    apidesc_free(&api);
    if (rc == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    printf("%s/.luals/kagari.lua and %s/.luarc.json written\n", dir, dir);
    return 0;
}

/* kagari playbook lint without a path: the configured playbook folder and library folder
 * (when --config is given or the default configuration file exists), else ./playbooks. */
static int
cmd_lint_configured(struct lint_opts *o)
{
    static char playbooks[] = "playbooks";
    char *dirs[] = { playbooks };
    const char *path = o->config ? o->config : cmd_default_config();
    struct config cfg;
    char *err = NULL;
    int rc;

    if (o->config == NULL && access(path, R_OK) != 0) {
        return cmd_lint(1, dirs, o);
    }
    if (config_load(path, &cfg, &err) == -1) {
        rc = cmd_fail("%s", err);
        free(err);
        return rc;
    }
    dirs[0] = cfg.playbook_dir;
    if (o->lib_dir == NULL) {
        o->lib_dir = cfg.playbook_lib_dir;
    }
    rc = cmd_lint(1, dirs, o);
    if (o->lib_dir == cfg.playbook_lib_dir) {
        o->lib_dir = NULL;
    }
    config_free(&cfg);
    return rc;
}

/* kagari playbook test: the given paths, else the configured playbook folder (when
 * --config is given or the default configuration file exists), else ./playbooks. */
static int
cmd_playbook_test(int argc, char **argv, const struct lint_opts *o)
{
    static char playbooks[] = "playbooks";
    char *dirs[] = { playbooks };
    const char *path = o->config ? o->config : cmd_default_config();
    struct config cfg;
    char *err = NULL;
    int rc;

    if (argc > 0) {
        return ptest_main(argv, argc, o->verbose);
    }
    if (o->config == NULL && access(path, R_OK) != 0) {
        return ptest_main(dirs, 1, o->verbose);
    }
    if (config_load(path, &cfg, &err) == -1) {
        rc = cmd_fail("%s", err);
        free(err);
        return rc;
    }
    dirs[0] = cfg.playbook_dir;
    rc = ptest_main(dirs, 1, o->verbose);
    config_free(&cfg);
    return rc;
}

static int
cmd_playbook_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "help", no_argument, NULL, 'h' },
        { "lib-dir", required_argument, NULL, 'l' },
        { "source", required_argument, NULL, 's' },
        { "verbose", no_argument, NULL, 'v' },
        { "config", required_argument, NULL, 'c' },
        { "tenant", required_argument, NULL, 't' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari playbook lint [--config FILE] [--lib-dir DIR] [--source NAME]... "
        "[FILE|DIR]...\n"
        "       kagari playbook test [-v] [--config FILE] [DIR|FILE_test.lua]...\n"
        "       kagari playbook annotations DIR\n"
        "       kagari playbook deploy [--config FILE] FILE...\n"
        "       kagari playbook history [NAME] [--tenant ID] [--config FILE]\n"
        "lint: check that each playbook evaluates in the sandbox and returns a valid\n"
        "playbook{}, then check its code and the libraries it requires against the real\n"
        "API: undeclared globals, unknown module members and alert methods, argument\n"
        "counts and types, unchecked results of calls that return nil, err, and source\n"
        "names. Prints FILE:LINE:COL: message for each problem; exits 1 when there is\n"
        "any. Without a path: the configuration's playbook folder and library folder\n"
        "(--config FILE), else ./playbooks. A DIR lints every *.lua in it and its\n"
        "libraries; a FILE in a lib folder is linted as a library. Libraries come from\n"
        "lib/ beside each file (--lib-dir names another folder); --source adds a source\n"
        "name your senders use.\n"
        "test: run the playbook tests (*_test.lua) of each folder or file (default: the\n"
        "configuration's playbook folder, else ./playbooks), without a daemon and\n"
        "without network; -v lists every check. Exit status 1 when a check failed.\n"
        "annotations: write DIR/.luals/kagari.lua (LuaLS ---@meta for every kagari\n"
        "function) and DIR/.luarc.json, so that editors complete and check playbooks.\n"
        "deploy: load each file as the daemon would (with the configuration's library\n"
        "folder), install it into the playbook folder, record in every tenant's database\n"
        "that you deployed this version now, and have the running daemon reload.\n"
        "history: the deployments of NAME recorded in each tenant (without NAME: the\n"
        "latest of each playbook): tenant, name, version, time (UTC), by whom, how.\n";
    struct lint_opts o = { NULL, NULL, 0, 0, NULL, NULL };
    int r = cmd_parse_opts(argc, argv, lo, "hl:s:vc:t:", cmd_playbook_opt, &o);
    int rc;

    if (r == 0 && optind < argc && optind + 2 >= argc && strcmp(argv[optind], "history") == 0) {
        rc = cmd_playbook_history(optind + 1 < argc ? argv[optind + 1] : NULL, o.tenant, o.config);
    } else if (r == 0 && optind < argc && strcmp(argv[optind], "deploy") == 0) {
        rc = cmd_playbook_deploy(argc - optind - 1, argv + optind + 1, o.config);
    } else if (r == 0 && optind < argc && strcmp(argv[optind], "test") == 0) {
        rc = cmd_playbook_test(argc - optind - 1, argv + optind + 1, &o);
    } else if (r == 0 && optind + 1 == argc && strcmp(argv[optind], "lint") == 0) {
        rc = cmd_lint_configured(&o);
    } else if (r != 0 || optind + 2 > argc ||
               (strcmp(argv[optind], "lint") != 0 && strcmp(argv[optind], "annotations") != 0) ||
               (strcmp(argv[optind], "annotations") == 0 && optind + 2 != argc)) {
        fputs(help, r == 1 ? stdout : stderr);
        rc = r == 1 ? 0 : 2;
    } else if (strcmp(argv[optind], "annotations") == 0) {
        rc = cmd_annotations(argv[optind + 1]);
    } else {
        rc = cmd_lint(argc - optind - 1, argv + optind + 1, &o);
    }
    for (size_t i = 0; i < o.nsources; i++) {
        free(o.sources[i]);
    }
    free(o.sources);
    return rc;
}

const struct cmd_entry cmd_playbook_entry = {
    .name = "playbook",
    .usage = "playbook lint|test|annotations|deploy|history",
    .summary = "check playbook files; run their tests; write editor annotations; deploy them",
    .exec = cmd_playbook_exec,
};
