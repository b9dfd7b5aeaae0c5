/* cmd_secret.c: `kagari secret encrypt`, a connector credential for the configuration. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/config.h"
#include "engine/secret.h"

static int
cmd_secret_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari secret encrypt [--config FILE] < secret.txt\n"
        "Encrypt a connector credential (read from standard input, so it stays out of\n"
        "shell history and the process list) with the configuration's key file, and print\n"
        "the \"enc:v1:...\" value to put in kagari.conf.lua (e.g. client_secret).\n";
    const char *config = cmd_default_config();
    struct config cfg;
    char *err = NULL, *plain, *enc;
    size_t len = 0;
    int r = cmd_parse_opts(argc, argv, lo, "h", cmd_config_opt, &config);

    if (r != 0 || optind + 1 != argc || strcmp(argv[optind], "encrypt") != 0) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (config_load(config, &cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    if (secret_load_key(cfg.connectors.key_file, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        config_free(&cfg);
        return 1;
    }
    config_free(&cfg);
    plain = util_read_file("/dev/stdin", 64 * 1024, &len, &err);
    if (plain == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        secret_unload_key();
        return 1;
    }
    while (len > 0 && (plain[len - 1] == '\n' || plain[len - 1] == '\r')) {
        plain[--len] = '\0';
    }
    if (len == 0 || strlen(plain) != len) {
        secret_free(plain);
        secret_unload_key();
        return cmd_fail("%s", "expected one secret on standard input");
    }
    enc = secret_encrypt(plain, &err);
    secret_free(plain);
    secret_unload_key();
    if (enc == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    printf("%s\n", enc);
    free(enc);
    return 0;
}

const struct cmd_entry cmd_secret_entry = {
    .name = "secret",
    .usage = "secret encrypt",
    .summary = "encrypt a connector credential for the configuration",
    .exec = cmd_secret_exec,
};
