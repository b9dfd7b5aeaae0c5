/* test_cmd.c: the helpers the CLI verbs share: --since/--until times and --limit
 * counts, hostile values included. */
#include "engine/cmd.h"

#include <stdlib.h>

#include "engine/util.h"
#include "tests/unit/test.h"

static void
test_parse_when(void)
{
    int64_t ms = 0, now = util_now_ms();
    static const char *const bad[] = {
        "",           "h",
        "-5h",        "+5h",
        "1e3h",       "0x10d",
        "nand",       "infd",
        "5 h",        "5hours",
        "yesterday",  "99999999d",
        "2026-13-01", "2026-12-04T25:00:00Z",
        "30",         "2026-12-04x",
        "1.2.3h",     "5h ",
        "\x1b[2J",
    };

    T_EQ_INT(cmd_parse_when("24h", &ms), 0);
    T_ASSERT(llabs(now - 86400000LL - ms) < 5000);
    T_EQ_INT(cmd_parse_when("7d", &ms), 0);
    T_ASSERT(llabs(now - 7 * 86400000LL - ms) < 5000);
    T_EQ_INT(cmd_parse_when("1.5h", &ms), 0);
    T_ASSERT(llabs(now - 5400000LL - ms) < 5000);
    T_EQ_INT(cmd_parse_when("90s", &ms), 0);
    T_EQ_INT(cmd_parse_when("500ms", &ms), 0);
    T_EQ_INT(cmd_parse_when("2026-12-04", &ms), 0);
    T_EQ_INT(ms, 1796342400000LL);
    T_EQ_INT(cmd_parse_when("2026-12-04T09:00:00+09:00", &ms), 0);
    T_EQ_INT(ms, 1796342400000LL);
    T_EQ_INT(cmd_parse_when("2026-12-04T00:00:00.250Z", &ms), 0);
    T_EQ_INT(ms, 1796342400250LL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (cmd_parse_when(bad[i], &ms) != -1) {
            T_FAIL_("accepted \"%s\"", bad[i]);
        }
    }
}

static void
test_parse_count(void)
{
    int n = 0;

    T_EQ_INT(cmd_parse_count("50", &n), 0);
    T_EQ_INT(n, 50);
    T_EQ_INT(cmd_parse_count("1000000000", &n), 0);
    T_EQ_INT(cmd_parse_count("0", &n), -1);
    T_EQ_INT(cmd_parse_count("-1", &n), -1);
    T_EQ_INT(cmd_parse_count("10x", &n), -1);
    T_EQ_INT(cmd_parse_count("", &n), -1);
    T_EQ_INT(cmd_parse_count("99999999999999999999", &n), -1);
}

TEST_LIST = {
    { "parse_when", test_parse_when },
    { "parse_count", test_parse_count },
    { NULL, NULL },
};
