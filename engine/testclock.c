/* testclock.c: the test clock. A test build (compiled with KAGARI_TEST_HOOKS, as
 * `make SANITIZE=1` is) may let a test move the engine's wall clock forward, so that
 * waits of minutes (an escalation's contacts, an approval's timeout) are tested without
 * waiting for them. It is off unless the configuration says `testing = { clock = true }`;
 * a build without the hooks refuses that setting, and a daemon with it on says so at
 * start, in `kagari status` and in /metrics.
 *
 * The shift is kept in <data>/test-clock (decimal milliseconds), so that a daemon killed
 * and started again, and the command line (`kagari escalation ack`), see the same time.
 * It only grows: time never goes back. The daemon's loop notices the step (loop.c's
 * clock check) and re-arms the timers counted in wall-clock time. */
#include "engine/testclock.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "engine/log.h"
#include "engine/metrics.h"

#define TESTCLOCK_FILE "test-clock"
#define TESTCLOCK_MAX_MS (366LL * 86400 * 1000) /* one step moves at most a year */

struct testclock_conf {
    int clock;
};

static const struct config_field testclock_fields[] = {
    { "clock", CONFIG_BOOL, offsetof(struct testclock_conf, clock), 0, 0, NULL, 0 },
    CONFIG_FIELDS_END,
};

static int
testclock_check(void *p, char **errp)
{
    struct testclock_conf *c = p;

#ifdef KAGARI_TEST_HOOKS
    (void)c;
    (void)errp;
    return 0;
#else
    if (c->clock) {
        return kg_err(errp, "clock: this build has no test hooks: the test clock "
                            "exists only in test builds (make SANITIZE=1), never in production");
    }
    return 0;
#endif
}

static const struct config_section testclock_section = {
    "testing", testclock_fields, sizeof(struct testclock_conf), testclock_check, NULL,
};

static struct {
    int on;
    char *path; /* <data>/test-clock */
} tc;

void
testclock_config_init(void)
{
    config_add_global_section(&testclock_section);
}

/* The shift stored in path: 0 when there is no file. -1 with *errp for a bad one. */
static int
read_shift(const char *path, int64_t *ms, char **errp)
{
    size_t len = 0;
    char *text, *end = NULL;
    long long v;

    *ms = 0;
    if (access(path, F_OK) != 0) {
        return 0;
    }
    if ((text = util_read_file(path, 64, &len, errp)) == NULL) {
        return -1;
    }
    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || (*end != '\0' && *end != '\n') || v < 0) {
        free(text);
        return kg_err(errp, "%s: not a number of milliseconds", path);
    }
    free(text);
    *ms = (int64_t)v;
    return 0;
}

static void
testclock_metrics(struct buf *b, void *arg)
{
    (void)arg;
    metrics_gauge(b, "kagari_test_clock_shift_seconds",
                  "How far the test clock moved the engine's time (a test build only)",
                  (double)util_clock_shift_ms() / 1000.0);
}

int
testclock_apply(const struct config *cfg, int daemon, char **errp)
{
    const struct testclock_conf *c = config_block(cfg, &testclock_section);
    int64_t ms = 0;

    if (c == NULL || !c->clock) {
        return 0;
    }
    free(tc.path);
    tc.path = xasprintf("%s/%s", cfg->data_dir, TESTCLOCK_FILE);
    if (read_shift(tc.path, &ms, errp) == -1) {
        return -1;
    }
    util_set_clock_shift(ms);
    if (daemon && !tc.on) {
        log_err("testclock.enabled shift_ms=%lld: THE TEST CLOCK IS ON (testing.clock): the "
                "engine's time can be moved through the control socket; a test setting, "
                "never for production",
                (long long)ms);
        metrics_add(testclock_metrics, NULL);
    }
    tc.on = 1;
    return 0;
}

int
testclock_on(void)
{
    return tc.on;
}

/* "+SECONDS" or "+<duration>" ("+15m"): ms, or -1. */
static int64_t
parse_step(const char *s)
{
    double secs = 0;

    if (s[0] != '+' || s[1] < '0' || s[1] > '9' ||
        strspn(s + 1, "0123456789.smhd") != strlen(s + 1) ||
        util_parse_duration(s + 1, &secs) == -1 || secs <= 0 ||
        secs * 1000 > (double)TESTCLOCK_MAX_MS) {
        return -1;
    }
    return (int64_t)(secs * 1000);
}

void
testclock_control(const char *verb, struct buf *reply)
{
    const char *arg = strcmp(verb, "clock") == 0 ? "" : verb + 6; /* after "clock " */
    int64_t step, shift;
    char *err = NULL, text[32], now[32];

    if (!tc.on) {
        (void)!buf_puts(reply, "{\"error\":\"the test clock is off (testing = { clock = true }, "
                               "test builds only)\"}");
        return;
    }
    if (arg[0] != '\0') {
        if ((step = parse_step(arg)) == -1) {
            (void)!buf_puts(reply, "{\"error\":\"expected clock +SECONDS or clock +DURATION "
                                   "(+15m), forward only, at most a year\"}");
            return;
        }
        shift = util_clock_shift_ms() + step;
        snprintf(text, sizeof(text), "%lld\n", (long long)shift);
        if (util_write_file(tc.path, text, strlen(text), 0600, &err) == -1) {
            (void)!buf_puts(reply, "{\"error\":");
            (void)!buf_json_string(reply, err, strlen(err));
            (void)!buf_puts(reply, "}");
            free(err);
            return;
        }
        util_set_clock_shift(shift);
        log_warn("testclock.advanced step_ms=%lld shift_ms=%lld", (long long)step,
                 (long long)shift);
    }
    util_fmt_time(util_now_ms(), now);
    (void)!buf_printf(reply, "{\"shift_ms\":%lld,\"now\":\"%s\"}", (long long)util_clock_shift_ms(),
                      now);
}

void
testclock_stall(const char *verb, struct buf *reply)
{
    const char *arg = strncmp(verb, "stall ", 6) == 0 ? verb + 6 : "";
    char *end = NULL;
    long ms = strtol(arg, &end, 10);
    struct timespec ts;

    if (!tc.on) {
        (void)!buf_puts(reply, "{\"error\":\"the test clock is off (testing = { clock = true }, "
                               "test builds only)\"}");
        return;
    }
    if (end == arg || *end != '\0' || ms < 1 || ms > 10000) {
        (void)!buf_puts(reply, "{\"error\":\"expected stall MS, 1 to 10000\"}");
        return;
    }
    log_warn("testclock.stall ms=%ld", ms);
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
    (void)!buf_printf(reply, "{\"stalled_ms\":%ld}", ms);
}

void
testclock_stop(void)
{
    if (tc.on) {
        metrics_remove(testclock_metrics, NULL);
    }
    tc.on = 0;
    free(tc.path);
    tc.path = NULL;
    util_set_clock_shift(0);
}
