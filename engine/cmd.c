/* cmd.c: helpers shared by the `kagari` verbs: option parsing, messages, store access. */
#include "engine/cmd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/config.h"
#include "engine/store.h"

const char *
cmd_default_config(void)
{
    const char *c = getenv("KAGARI_CONFIG");

    return c != NULL && *c != '\0' ? c : "kagari.conf.lua";
}

int
cmd_fail(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "kagari: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

int
cmd_parse_opts(int argc, char **argv, const struct option *long_opts, const char *short_opts,
               int (*each)(int c, const char *arg, void *ud), void *ud)
{
    int c;

    optind = 1;
    opterr = 1;
    while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
        if (c == 'h') {
            return 1;
        }
        if (c == '?' || each(c, optarg, ud) == -1) {
            return -1;
        }
    }
    return 0;
}

int
cmd_config_opt(int c, const char *arg, void *ud)
{
    if (c != 'c') {
        return -1;
    }
    *(const char **)ud = arg;
    return 0;
}

char *
cmd_new_token(void)
{
    unsigned char rnd[32];
    char hex[65];

    if (util_random(rnd, sizeof(rnd)) == -1) {
        return NULL;
    }
    util_hex(rnd, sizeof(rnd), hex);
    return xasprintf("kg_%s", hex);
}

int
cmd_open_store(const char *config_path, struct config *cfg, struct store **st)
{
    char *err = NULL;

    if (config_load(config_path, cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return -1;
    }
    if (store_open(cfg->data_dir, st, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        config_free(cfg);
        return -1;
    }
    return 0;
}
