/* breaker.c: circuit breakers per key (a tenant and an endpoint): consecutive failures
 * open the circuit for a cooldown, then a single trial call decides whether it closes or
 * opens again. */
#include "connectors/breaker.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "engine/kagari.h"

#define BREAKER_DEFAULT_THRESHOLD 5
#define BREAKER_DEFAULT_COOLDOWN 30.0
#define BREAKER_POLL_MS 1000

enum breaker_st { BREAKER_CLOSED = 0, BREAKER_OPEN, BREAKER_HALF_OPEN };

struct breaker {
    char *endpoint;
    enum breaker_st st;
    int failures;        /* consecutive, while closed */
    int64_t open_until;  /* monotonic us; while open */
    int64_t trial_since; /* monotonic us the half-open trial was let through; 0: none */
    struct breaker *next;
};

static struct breaker *breakers;
static int threshold = BREAKER_DEFAULT_THRESHOLD;
static int64_t cooldown_us = (int64_t)(BREAKER_DEFAULT_COOLDOWN * 1e6);
static unsigned long long opened, closed_again, half_opened; /* transitions, for /metrics */

static struct breaker *
find(const char *endpoint, int create)
{
    struct breaker *b;

    for (b = breakers; b != NULL; b = b->next) {
        if (strcmp(b->endpoint, endpoint) == 0) {
            return b;
        }
    }
    if (!create) {
        return NULL;
    }
    b = xcalloc(1, sizeof(*b));
    b->endpoint = xstrdup(endpoint);
    b->next = breakers;
    breakers = b;
    return b;
}

/* Whether a call may go: always when closed; never while open and cooling down; once
 * the cooldown is over, exactly one trial at a time (half-open). A trial that never
 * reports (its call was abandoned) stops blocking after another cooldown, so the
 * circuit cannot stay stuck half-open. */
int
breaker_allow(const char *endpoint)
{
    struct breaker *b = find(endpoint, 0);
    int64_t now;

    if (b == NULL || b->st == BREAKER_CLOSED) {
        return 1;
    }
    now = util_mono_us();
    if (b->st == BREAKER_OPEN) {
        if (now < b->open_until) {
            return 0;
        }
        b->st = BREAKER_HALF_OPEN;
        b->trial_since = 0;
        half_opened++;
        log_info("breaker.half_open key=%s", log_quote(endpoint));
    }
    if (b->trial_since != 0 && now - b->trial_since < cooldown_us) {
        return 0;
    }
    b->trial_since = now;
    return 1;
}

/* Any success closes the circuit and clears the failure count. */
void
breaker_success(const char *endpoint)
{
    struct breaker *b = find(endpoint, 0);

    if (b == NULL) {
        return;
    }
    if (b->st != BREAKER_CLOSED) {
        closed_again++;
        log_info("breaker.closed key=%s", log_quote(endpoint));
    }
    b->st = BREAKER_CLOSED;
    b->failures = 0;
    b->trial_since = 0;
}

/* A failure counts towards the threshold while closed; a failed trial (half-open) opens
 * the circuit again for a full cooldown. Late failures while open change nothing. */
void
breaker_failure(const char *endpoint)
{
    struct breaker *b = find(endpoint, 1);

    switch (b->st) {
    case BREAKER_CLOSED:
        b->failures++;
        if (b->failures < threshold) {
            return;
        }
        break;
    case BREAKER_HALF_OPEN:
        break;
    case BREAKER_OPEN:
        return;
    }
    b->st = BREAKER_OPEN;
    b->open_until = util_mono_us() + cooldown_us;
    b->trial_since = 0;
    opened++;
    log_warn("breaker.open key=%s failures=%d cooldown_ms=%lld", log_quote(endpoint), b->failures,
             (long long)(cooldown_us / 1000));
}

/* The state a call would meet now: an open circuit whose cooldown is over reads as
 * "half-open" (the next breaker_allow() lets the trial through). */
const char *
breaker_state(const char *endpoint)
{
    struct breaker *b = find(endpoint, 0);

    if (b == NULL || b->st == BREAKER_CLOSED) {
        return "closed";
    }
    if (b->st == BREAKER_OPEN && util_mono_us() < b->open_until) {
        return "open";
    }
    return "half-open";
}

/* While a call may not go: the rest of an open circuit's cooldown; while a half-open
 * trial is out, a short poll (BREAKER_POLL_MS), as the trial's end is not announced. */
int64_t
breaker_wait_ms(const char *endpoint)
{
    struct breaker *b = find(endpoint, 0);
    int64_t now = util_mono_us();

    if (b == NULL || b->st == BREAKER_CLOSED) {
        return 0;
    }
    if (b->st == BREAKER_OPEN && now < b->open_until) {
        return (b->open_until - now + 999) / 1000;
    }
    return BREAKER_POLL_MS;
}

void
breaker_metrics(struct buf *out)
{
    size_t n[3] = { 0, 0, 0 };

    for (struct breaker *b = breakers; b != NULL; b = b->next) {
        const char *st = breaker_state(b->endpoint);

        n[strcmp(st, "closed") == 0 ? 0 : strcmp(st, "open") == 0 ? 1 : 2]++;
    }
    (void)!buf_puts(out, "# TYPE kagari_breakers gauge\n");
    (void)!buf_printf(out, "kagari_breakers{state=\"closed\"} %zu\n", n[0]);
    (void)!buf_printf(out, "kagari_breakers{state=\"open\"} %zu\n", n[1]);
    (void)!buf_printf(out, "kagari_breakers{state=\"half-open\"} %zu\n", n[2]);
    metrics_labelled(out, "kagari_breaker_transitions_total", "to", "open", opened, 1);
    metrics_labelled(out, "kagari_breaker_transitions_total", "to", "half-open", half_opened, 0);
    metrics_labelled(out, "kagari_breaker_transitions_total", "to", "closed", closed_again, 0);
}

/* threshold < 1 counts as 1; a negative cooldown as 0. Open circuits keep the time they
 * were given. */
void
breaker_configure(int thr, double cooldown)
{
    threshold = thr < 1 ? 1 : thr;
    cooldown_us = cooldown > 0 ? (int64_t)(cooldown * 1e6) : 0;
}

/* Forget every endpoint and restore the defaults. */
void
breaker_shutdown(void)
{
    while (breakers != NULL) {
        struct breaker *b = breakers;

        breakers = b->next;
        free(b->endpoint);
        free(b);
    }
    threshold = BREAKER_DEFAULT_THRESHOLD;
    cooldown_us = (int64_t)(BREAKER_DEFAULT_COOLDOWN * 1e6);
    opened = closed_again = half_opened = 0;
}
