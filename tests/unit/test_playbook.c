/* test_playbook.c: parsing playbook files and matching their triggers. */
#include "engine/playbook.h"

#include <stdlib.h>
#include <string.h>

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

TEST_LIST = {
    { "parse_ok", test_parse_ok },
    { "parse_errors", test_parse_errors },
    { "matches", test_matches },
    { NULL, NULL },
};
