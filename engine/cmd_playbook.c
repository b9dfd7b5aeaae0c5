/* cmd_playbook.c: `kagari playbook lint`, check playbook files in the sandbox, and
 * `kagari playbook test`, run the playbooks' own tests (engine/ptest.c). */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/env.h"
#include "engine/playbook.h"
#include "engine/ptest.h"
#include "engine/sandbox.h"

static int
cmd_playbook_opt(int c, const char *arg, void *ud)
{
    (void)arg;
    if (c == 'v') {
        *(int *)ud = 1;
        return 0;
    }
    return -1;
}

static int
cmd_playbook_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "help", no_argument, NULL, 'h' },
        { "verbose", no_argument, NULL, 'v' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari playbook lint FILE...\n"
        "       kagari playbook test [-v] [DIR|FILE_test.lua]...\n"
        "lint: check that each file evaluates in the sandbox and returns a valid playbook{}.\n"
        "test: run the playbook tests (*_test.lua) of each folder (default: playbooks) or\n"
        "      file, without a daemon and without network; -v lists every check.\n"
        "      Exit status 1 when a check failed.\n";
    static char playbooks[] = "playbooks";
    char *default_dir[] = { playbooks };
    struct sandbox *sb;
    char *err = NULL;
    int bad = 0, verbose = 0;
    int r = cmd_parse_opts(argc, argv, lo, "hv", cmd_playbook_opt, &verbose);

    if (r == 0 && optind < argc && strcmp(argv[optind], "test") == 0) {
        if (optind + 1 == argc) {
            return ptest_main(default_dir, 1, verbose);
        }
        return ptest_main(argv + optind + 1, argc - optind - 1, verbose);
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
