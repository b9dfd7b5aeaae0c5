/* limiter.h: shared rate limiters (token buckets) per API and tenant, with priorities:
 * containment calls go before enrichment lookups. A waiting call costs a queue entry;
 * how many wait is visible (limiter_waiting) rather than silently slow. */
#ifndef KAGARI_LIMITER_H
#define KAGARI_LIMITER_H

#include <stddef.h>

#include "engine/kagari.h"

enum limiter_prio { LIMITER_CONTAIN = 0, LIMITER_NORMAL = 1, LIMITER_ENRICH = 2 };

struct limiter_wait;

/* A bucket: up to `burst` calls at once, refilled at `rate` per second. Several buckets
 * may apply to one key (e.g. Defender: 100/min and 1500/h): a call proceeds when every
 * bucket of its key has a token. */
void limiter_define(const char *key, double rate, double burst);

/* Take a token for key now (returns 0) or queue the caller: fn(arg) is called from the
 * event loop when it gets one (returns 1 and sets *w, the queue entry, cancellable).
 * Keys without buckets always pass. */
int limiter_acquire(const char *key, enum limiter_prio prio, void (*fn)(void *arg), void *arg,
                    struct limiter_wait **w);
void limiter_cancel(struct limiter_wait *w);
/* Put back a token taken for a call that was never sent. */
void limiter_refund(const char *key);

size_t limiter_waiting(const char *key); /* NULL: all keys */
void limiter_shutdown(void);

#endif
