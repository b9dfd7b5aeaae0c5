/* test_testclock.c: the test clock of a test build: off unless the configuration turns it
 * on; the shift kept in the data folder and applied again (a restarted daemon, the
 * command line); the control request moving it forward only, by seconds or a duration,
 * and refusing anything else. */
#include "engine/testclock.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "engine/config.h"
#include "engine/util.h"
#include "tests/unit/test.h"

/* A configuration in a fresh folder whose data_dir is that folder; clock on or off. */
static int
load(const char *dir, int on, struct config *cfg)
{
    static int registered;
    char *path = xasprintf("%s/kagari.conf.lua", dir);
    char *text = xasprintf("data_dir = %s\n%s", "'data'", on ? "testing = { clock = true }\n" : "");
    char *err = NULL;
    int rc;

    if (!registered) {
        testclock_config_init();
        registered = 1;
    }
    rc = config_load_buffer(text, strlen(text), path, cfg, &err);

    if (rc == -1) {
        fprintf(stderr, "  config: %s\n", err);
    }
    free(err);
    free(text);
    free(path);
    return rc;
}

static char *
tempdir(void)
{
    char tmpl[] = "/tmp/kagari-testclock-XXXXXX";
    char *dir = mkdtemp(tmpl), *data;

    if (dir == NULL) {
        return NULL;
    }
    data = xasprintf("%s/data", dir);
    (void)!mkdir(data, 0700);
    free(data);
    return xstrdup(dir);
}

static void
cleanup(char *dir)
{
    char *cmd = xasprintf("rm -rf '%s'", dir);

    (void)!system(cmd);
    free(cmd);
    free(dir);
}

static void
test_off_by_default(void)
{
    char *dir = tempdir();
    struct config cfg;
    struct buf reply;
    char *err = NULL;

    T_REQUIRE(dir != NULL);
    T_REQUIRE(load(dir, 0, &cfg) == 0);
    T_EQ_INT(testclock_apply(&cfg, 0, &err), 0);
    T_EQ_INT(testclock_on(), 0);
    buf_init(&reply, 0);
    testclock_control("clock +60", &reply);
    T_ASSERT(strstr(reply.data, "the test clock is off") != NULL);
    T_EQ_INT(util_clock_shift_ms(), 0);
    buf_free(&reply);
    config_free(&cfg);
    cleanup(dir);
}

static void
test_advance_kept_and_applied(void)
{
    char *dir = tempdir(), *file, *text;
    struct config cfg;
    struct buf reply;
    char *err = NULL;
    size_t len = 0;
    int64_t before;
    static const char *const bad[] = {
        "clock 60",  "clock -60",   "clock +0",  "clock +",   "clock +x",
        "clock +1y", "clock +400d", "clock +-5", "clock + 5", "clock +5s extra",
    };

    T_REQUIRE(dir != NULL);
    T_REQUIRE(load(dir, 1, &cfg) == 0);
    T_EQ_INT(testclock_apply(&cfg, 0, &err), 0);
    T_EQ_INT(testclock_on(), 1);
    T_EQ_INT(util_clock_shift_ms(), 0);
    before = util_now_ms();
    buf_init(&reply, 0);
    testclock_control("clock +15m", &reply);
    T_ASSERT(strstr(reply.data, "\"shift_ms\":900000") != NULL);
    T_ASSERT(util_now_ms() - before >= 900000 && util_now_ms() - before < 960000);
    reply.len = 0;
    testclock_control("clock +30", &reply);
    T_ASSERT(strstr(reply.data, "\"shift_ms\":930000") != NULL);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        buf_free(&reply);
        buf_init(&reply, 0);
        testclock_control(bad[i], &reply);
        if (strstr(reply.data ? reply.data : "", "\"error\"") == NULL) {
            T_FAIL_("%s accepted: %s", bad[i], reply.data ? reply.data : "");
        }
    }
    T_EQ_INT(util_clock_shift_ms(), 930000);
    buf_free(&reply);
    /* Kept in the data folder: a process that starts later applies it. */
    file = xasprintf("%s/data/test-clock", dir);
    text = util_read_file(file, 64, &len, &err);
    T_REQUIRE(text != NULL);
    T_EQ_STR(text, "930000\n");
    free(text);
    testclock_stop();
    T_EQ_INT(util_clock_shift_ms(), 0);
    T_EQ_INT(testclock_apply(&cfg, 0, &err), 0);
    T_EQ_INT(util_clock_shift_ms(), 930000);
    testclock_stop();
    /* A damaged file is an error, not a silent zero. */
    T_REQUIRE(util_write_file(file, "12x\n", 4, 0600, &err) == 0);
    T_EQ_INT(testclock_apply(&cfg, 0, &err), -1);
    T_ASSERT(err != NULL && strstr(err, "test-clock") != NULL);
    free(err);
    testclock_stop();
    free(file);
    config_free(&cfg);
    cleanup(dir);
}

TEST_LIST = {
    { "off_by_default", test_off_by_default },
    { "advance_kept_and_applied", test_advance_kept_and_applied },
    { NULL, NULL },
};
