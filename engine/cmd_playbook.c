/* cmd_playbook.c: `kagari playbook lint`, check playbook files in the sandbox, and
 * `kagari playbook test`, run the playbooks' own tests (engine/ptest.c). */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/env.h"
#include "engine/playbook.h"
#include "engine/ptest.h"
#include "engine/sandbox.h"

struct playbook_opts {
    int verbose;
    const char *config;
};

static int
cmd_playbook_opt(int c, const char *arg, void *ud)
{
    struct playbook_opts *o = ud;

    if (c == 'v') {
        o->verbose = 1;
        return 0;
    }
    if (c == 'c') {
        o->config = arg;
        return 0;
    }
    return -1;
}

/* kagari playbook test: the given paths, else the configured playbook folder (when
 * --config is given or the default configuration file exists), else ./playbooks. */
static int
cmd_playbook_test(int argc, char **argv, const struct playbook_opts *o)
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
        { "verbose", no_argument, NULL, 'v' },
        { "config", required_argument, NULL, 'c' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari playbook lint FILE...\n"
        "       kagari playbook test [-v] [--config FILE] [DIR|FILE_test.lua]...\n"
        "lint: check that each file evaluates in the sandbox and returns a valid playbook{}.\n"
        "test: run the playbook tests (*_test.lua) of each folder or file (default: the\n"
        "      configuration's playbook folder, else ./playbooks), without a daemon and\n"
        "      without network; -v lists every check. Exit status 1 when a check failed.\n";
    struct playbook_opts o = { 0, NULL };
    struct sandbox *sb;
    char *err = NULL;
    int bad = 0;
    int r = cmd_parse_opts(argc, argv, lo, "hvc:", cmd_playbook_opt, &o);

    if (r == 0 && optind < argc && strcmp(argv[optind], "test") == 0) {
        return cmd_playbook_test(argc - optind - 1, argv + optind + 1, &o);
    }
    if (r != 0 || optind + 2 > argc || strcmp(argv[optind], "lint") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    sb = env_sandbox_new(64u << 20, &err);
    if (sb == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    for (int i = optind + 1; i < argc; i++) {
        size_t len = 0;
        char *src = util_read_file(argv[i], 1 << 20, &len, &err);
        struct playbook *pb = src ? playbook_parse(sb, argv[i], src, len, &err) : NULL;

        if (pb == NULL) {
            fprintf(stderr, "%s\n", err);
            bad++;
        } else {
            printf("%s: ok: playbook %s (version %.12s)\n", argv[i], pb->name, pb->hash);
        }
        playbook_unref(pb);
        free(src);
        free(err);
        err = NULL;
    }
    sandbox_free(sb);
    return bad ? 1 : 0;
}

const struct cmd_entry cmd_playbook_entry = {
    .name = "playbook",
    .usage = "playbook lint|test",
    .summary = "check playbook files; run their tests",
    .exec = cmd_playbook_exec,
};
