/* cmd_version.c: `kagari version`, print the version. */
#include "engine/cmd.h"

#include <stdio.h>

#include "engine/serve.h"

/* Arguments are ignored: `kagari version --help` prints the version too. */
static int
cmd_version_exec(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("kagari %s\n", KAGARI_VERSION);
    return 0;
}

const struct cmd_entry cmd_version_entry = {
    .name = "version",
    .usage = "version",
    .summary = "print the version",
    .exec = cmd_version_exec,
};
