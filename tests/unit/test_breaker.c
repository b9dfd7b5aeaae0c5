/* test_breaker.c: circuit breaker states with a tiny cooldown in real time. */
#include "connectors/breaker.h"

#include <time.h>

#include "engine/log.h"
#include "engine/util.h"
#include "tests/unit/test.h"

#define EP "https://graph.example:443"

static void
sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

    nanosleep(&ts, NULL);
}

static void
fail_n(const char *ep, int n)
{
    for (int i = 0; i < n; i++) {
        breaker_failure(ep);
    }
}

static void
test_threshold(void)
{
    log_set_level(KG_LOG_ERR);
    breaker_configure(3, 10);
    T_EQ_STR(breaker_state(EP), "closed");
    T_EQ_INT(breaker_allow(EP), 1);
    fail_n(EP, 2);
    T_EQ_STR(breaker_state(EP), "closed");
    T_EQ_INT(breaker_allow(EP), 1);
    /* A success in between resets the consecutive count. */
    breaker_success(EP);
    fail_n(EP, 2);
    T_EQ_STR(breaker_state(EP), "closed");
    breaker_failure(EP);
    T_EQ_STR(breaker_state(EP), "open");
    /* Open: every call fails fast, and late failures change nothing. */
    for (int i = 0; i < 10; i++) {
        T_EQ_INT(breaker_allow(EP), 0);
    }
    breaker_failure(EP);
    T_EQ_STR(breaker_state(EP), "open");
    /* Other endpoints are independent. */
    T_EQ_INT(breaker_allow("https://other.example"), 1);
    T_EQ_STR(breaker_state("https://other.example"), "closed");
    breaker_shutdown();
    T_EQ_STR(breaker_state(EP), "closed");
}

static void
test_defaults(void)
{
    log_set_level(KG_LOG_ERR);
    breaker_shutdown();
    fail_n(EP, 4);
    T_EQ_STR(breaker_state(EP), "closed");
    breaker_failure(EP);
    T_EQ_STR(breaker_state(EP), "open");
    /* Default cooldown is 30 s: still open after a short while. */
    sleep_ms(60);
    T_EQ_INT(breaker_allow(EP), 0);
    breaker_shutdown();
}

static void
test_half_open_success(void)
{
    int64_t t0;

    log_set_level(KG_LOG_ERR);
    breaker_configure(2, 0.05);
    fail_n(EP, 2);
    t0 = util_mono_us();
    T_EQ_STR(breaker_state(EP), "open");
    T_EQ_INT(breaker_allow(EP), 0);
    while (breaker_allow(EP) == 0 && util_mono_us() - t0 < 2000000) {
        sleep_ms(5);
    }
    /* The trial got through no sooner than the cooldown. */
    T_ASSERT(util_mono_us() - t0 >= 45000);
    T_EQ_STR(breaker_state(EP), "half-open");
    /* Exactly one trial until it reports. */
    T_EQ_INT(breaker_allow(EP), 0);
    T_EQ_INT(breaker_allow(EP), 0);
    breaker_success(EP);
    T_EQ_STR(breaker_state(EP), "closed");
    T_EQ_INT(breaker_allow(EP), 1);
    T_EQ_INT(breaker_allow(EP), 1);
    /* Closed again with a fresh count: one failure does not reopen it. */
    breaker_failure(EP);
    T_EQ_STR(breaker_state(EP), "closed");
    breaker_shutdown();
}

static void
test_half_open_failure(void)
{
    int64_t t0;

    log_set_level(KG_LOG_ERR);
    breaker_configure(1, 0.05);
    breaker_failure(EP);
    T_EQ_STR(breaker_state(EP), "open");
    sleep_ms(70);
    T_EQ_STR(breaker_state(EP), "half-open");
    T_EQ_INT(breaker_allow(EP), 1);
    T_EQ_INT(breaker_allow(EP), 0);
    /* The trial fails: open again for a full cooldown. */
    breaker_failure(EP);
    t0 = util_mono_us();
    T_EQ_STR(breaker_state(EP), "open");
    T_EQ_INT(breaker_allow(EP), 0);
    /* A waiting call is told the rest of the cooldown. */
    T_ASSERT(breaker_wait_ms(EP) > 0 && breaker_wait_ms(EP) <= 50);
    T_EQ_INT(breaker_wait_ms("other key"), 0);
    while (breaker_allow(EP) == 0 && util_mono_us() - t0 < 2000000) {
        sleep_ms(5);
    }
    T_ASSERT(util_mono_us() - t0 >= 45000);
    breaker_success(EP);
    T_EQ_STR(breaker_state(EP), "closed");
    breaker_shutdown();
}

/* A trial whose call never reports does not keep the circuit half-open forever. */
static void
test_abandoned_trial(void)
{
    log_set_level(KG_LOG_ERR);
    breaker_configure(1, 0.05);
    breaker_failure(EP);
    sleep_ms(70);
    T_EQ_INT(breaker_allow(EP), 1);
    T_EQ_INT(breaker_allow(EP), 0);
    sleep_ms(70);
    T_EQ_INT(breaker_allow(EP), 1);
    T_EQ_INT(breaker_allow(EP), 0);
    breaker_shutdown();
}

static void
test_configure_bounds(void)
{
    log_set_level(KG_LOG_ERR);
    breaker_configure(0, -1);
    breaker_failure(EP);
    /* threshold 0 acts as 1; cooldown 0 means a trial may go at once. */
    T_EQ_STR(breaker_state(EP), "half-open");
    T_EQ_INT(breaker_allow(EP), 1);
    breaker_success(EP);
    T_EQ_STR(breaker_state(EP), "closed");
    breaker_shutdown();
    log_set_level(KG_LOG_INFO);
}

TEST_LIST = {
    { "threshold", test_threshold },
    { "defaults", test_defaults },
    { "half_open_success", test_half_open_success },
    { "half_open_failure", test_half_open_failure },
    { "abandoned_trial", test_abandoned_trial },
    { "configure_bounds", test_configure_bounds },
    { NULL, NULL },
};
