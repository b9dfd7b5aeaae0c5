/* cmd_serve.c: `kagari serve`, run the daemon in the foreground. */
#include "engine/cmd.h"

#include <stdio.h>

#include "engine/serve.h"

static int
cmd_serve_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    static const char help[] =
        "usage: kagari serve [--config FILE]\n"
        "Run the engine: alert intake, playbook runs. SIGTERM/SIGINT (or kagari stop) drain\n"
        "and stop, SIGHUP (or kagari reload) reloads the playbooks; kagari status tells how\n"
        "it is. Logs go to stderr, one event per line.\n";
    const char *config = cmd_default_config();
    int r = cmd_parse_opts(argc, argv, lo, "h", cmd_config_opt, &config);

    if (r != 0 || optind != argc) {
        fputs(help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    return serve_main(config);
}

const struct cmd_entry cmd_serve_entry = {
    .name = "serve",
    .usage = "serve",
    .summary = "run the engine",
    .exec = cmd_serve_exec,
};
