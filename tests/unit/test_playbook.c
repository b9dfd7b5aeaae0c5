/* test_playbook.c: parsing playbook files and matching their triggers. */
#include "engine/playbook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/env.h"
#include "tests/unit/test.h"

static struct playbook *
parse(const char *src, char **err)
{
    struct sandbox *sb = env_sandbox_new(16u << 20, err);
    struct playbook *pb;

    if (sb == NULL) {
        return NULL;
    }
    pb = playbook_parse(sb, "pb/test.lua", src, strlen(src), err);
    sandbox_free(sb);
    return pb;
}

static void
test_parse_ok(void)
{
    char *err = NULL;
    struct playbook *pb =
        parse("return playbook{ name='t1', description='d', timeout='15m', instructions=5000,\n"
              "  dry_run=true,\n"
              "  on={source={'entra.signin','azure.*'}, min_severity='Medium',\n"
              "      outcome='succeeded'},\n"
              "  run=function(alert) end }\n",
              &err);

    T_REQUIRE(pb != NULL);
    T_EQ_STR(pb->name, "t1");
    T_EQ_STR(pb->description, "d");
    T_EQ_INT(pb->nsources, 2);
    T_EQ_INT(pb->min_severity, SEV_MEDIUM);
    T_EQ_INT(pb->noutcomes, 1);
    T_ASSERT(pb->timeout == 900);
    T_EQ_INT(pb->instructions, 5000);
    T_EQ_INT(pb->dry_run, 1);
    T_EQ_INT(strlen(pb->hash), 64);
    playbook_unref(pb);
    free(err);
}

static void
expect_error(const char *src, const char *needle)
{
    char *err = NULL;
    struct playbook *pb = parse(src, &err);

    T_ASSERT(pb == NULL);
    T_CONTAINS(err, needle);
    playbook_unref(pb);
    free(err);
}

static void
test_parse_errors(void)
{
    expect_error("return playbook{ name='x', on={}, run=function() end", "test.lua:1:");
    expect_error("\n\nerror('top')\n", "test.lua:3: top");
    expect_error("return 42", "must end with");
    expect_error("return playbook{ on={}, run=function() end }", "name:");
    expect_error("return playbook{ name='bad name!', on={}, run=function() end }", "name:");
    expect_error("return playbook{ name='x', on={}, run=1 }", "run:");
    expect_error("return playbook{ name='x', run=function() end }", "on:");
    expect_error("return playbook{ name='x', on={sauce='y'}, run=function() end }",
                 "unknown field 'sauce'");
    expect_error("return playbook{ name='x', on={min_severity='urgent'}, run=function() end }",
                 "on.min_severity");
    expect_error("return playbook{ name='x', on={outcome='won'}, run=function() end }",
                 "on.outcome");
    expect_error("return playbook{ name='x', on={}, run=function() end, tiemout=3 }",
                 "unknown field 'tiemout'");
    expect_error("return playbook{ name='x', on={}, timeout='soon', run=function() end }",
                 "timeout:");
    expect_error("return playbook{ name='x', on={}, dry_run='yes', run=function() end }",
                 "dry_run:");
    expect_error("while true do end", "budget");
    expect_error("sleep(1)", "only inside a playbook run");
    expect_error("\x1bLua\x54\x00", "test.lua");
}

static void
test_matches(void)
{
    char *err = NULL;
    struct playbook *pb =
        parse("return playbook{ name='m', on={source={'entra.signin','azure.*'},\n"
              "  min_severity='high', outcome={'succeeded','attempted'}}, run=function() end }",
              &err);
    struct alert a;

    T_REQUIRE(pb != NULL);
    memset(&a, 0, sizeof(a));
    a.source = (char *)"entra.signin";
    a.outcome = (char *)"succeeded";
    a.severity = SEV_HIGH;
    T_ASSERT(playbook_matches(pb, &a));
    a.source = (char *)"azure.firewall";
    T_ASSERT(playbook_matches(pb, &a));
    a.source = (char *)"entra.audit";
    T_ASSERT(!playbook_matches(pb, &a));
    a.source = (char *)"azure.waf";
    a.severity = SEV_MEDIUM;
    T_ASSERT(!playbook_matches(pb, &a));
    a.severity = SEV_CRITICAL;
    a.outcome = (char *)"blocked";
    T_ASSERT(!playbook_matches(pb, &a));
    playbook_unref(pb);
    free(err);
}

static void
write_text(const char *dir, const char *name, const char *text)
{
    char *path = xasprintf("%s/%s", dir, name);
    char *err = NULL;

    T_ASSERT(util_write_file(path, text, strlen(text), 0600, &err) == 0);
    free(err);
    free(path);
}

static void
link_to(const char *target, const char *dir, const char *name)
{
    char *path = xasprintf("%s/%s", dir, name);

    T_ASSERT(symlink(target, path) == 0);
    free(path);
}

/* The folder loads regular files in it and refuses, without reading, symbolic links
 * (to a playbook outside, to a secret, to a directory, even to a playbook inside),
 * directories named *.lua and FIFOs. */
static void
test_folder_refuses_non_regular(void)
{
    char root[64];
    char *pbdir, *outside, *secret, *good, *sub, *fifo, *cmd;
    char *errs = NULL, *err = NULL;
    struct sandbox *sb = env_sandbox_new(16u << 20, &err);
    struct playbook_set set;

    T_REQUIRE(sb != NULL);
    snprintf(root, sizeof(root), "/tmp/kagari-test-pb-XXXXXX");
    T_REQUIRE(mkdtemp(root) != NULL);
    pbdir = xasprintf("%s/pb", root);
    T_ASSERT(util_mkdirs(pbdir, 0700) == 0);
    write_text(root, "outside.lua",
               "return playbook{ name='outside', on={}, run=function() end }\n");
    write_text(root, "secret.txt", "db_password = hunter2-SECRET-LINE\n");
    write_text(pbdir, "good.lua", "return playbook{ name='good', on={}, run=function() end }\n");
    outside = xasprintf("%s/outside.lua", root);
    secret = xasprintf("%s/secret.txt", root);
    good = xasprintf("%s/good.lua", pbdir);
    link_to(outside, pbdir, "link-out.lua");
    link_to(secret, pbdir, "link-secret.lua");
    link_to(root, pbdir, "link-dir.lua");
    link_to(good, pbdir, "link-in.lua");
    sub = xasprintf("%s/sub.lua", pbdir);
    T_ASSERT(mkdir(sub, 0700) == 0);
    fifo = xasprintf("%s/fifo.lua", pbdir);
    T_ASSERT(mkfifo(fifo, 0600) == 0);

    T_REQUIRE(playbook_set_load(sb, pbdir, &set, &errs) == 0);
    T_EQ_INT(set.n, 1);
    if (set.n == 1) {
        T_EQ_STR(set.v[0]->name, "good");
    }
    T_CONTAINS(errs, "link-out.lua: refused: a symbolic link");
    T_CONTAINS(errs, "link-secret.lua: refused: a symbolic link");
    T_CONTAINS(errs, "link-dir.lua: refused: a symbolic link");
    T_CONTAINS(errs, "link-in.lua: refused: a symbolic link");
    T_CONTAINS(errs, "sub.lua: refused: a directory");
    T_CONTAINS(errs, "fifo.lua: refused: a FIFO");
    T_ASSERT(errs == NULL || strstr(errs, "hunter2") == NULL);
    T_ASSERT(errs == NULL || strstr(errs, "db_password") == NULL);
    playbook_set_free(&set);
    free(errs);
    errs = NULL;

    if (geteuid() != 0) { /* root reads a file of mode 000 anyway */
        T_ASSERT(chmod(good, 0) == 0);
        T_REQUIRE(playbook_set_load(sb, pbdir, &set, &errs) == 0);
        T_EQ_INT(set.n, 0);
        T_CONTAINS(errs, "good.lua: refused: Permission denied");
        playbook_set_free(&set);
        free(errs);
    }
    sandbox_free(sb);
    cmd = xasprintf("rm -rf %s", root);
    T_ASSERT(system(cmd) == 0);
    free(cmd);
    free(pbdir);
    free(outside);
    free(secret);
    free(good);
    free(sub);
    free(fifo);
    free(err);
}

TEST_LIST = {
    { "parse_ok", test_parse_ok },
    { "parse_errors", test_parse_errors },
    { "matches", test_matches },
    { "folder_refuses_non_regular", test_folder_refuses_non_regular },
    { NULL, NULL },
};
