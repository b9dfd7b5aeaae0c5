/* breaker.h: circuit breakers per key (the call core uses "<tenant> <endpoint>", the
 * endpoint being scheme://host[:port], so one tenant's failures never stop another's
 * calls). After `threshold` consecutive failures (transport errors, 5xx) the circuit
 * opens: calls wait for `cooldown` seconds; then one trial call is let through
 * (half-open); its success closes the circuit, its failure opens it again. */
#ifndef KAGARI_BREAKER_H
#define KAGARI_BREAKER_H

#include <stdint.h>

#include "engine/kagari.h"

/* 1 when a call to endpoint may proceed, 0 when the circuit is open. */
int breaker_allow(const char *endpoint);
void breaker_success(const char *endpoint);
void breaker_failure(const char *endpoint);
/* "closed", "open" or "half-open". */
const char *breaker_state(const char *endpoint);
/* How long a call to endpoint should wait before asking breaker_allow again (0: it may
 * go now). */
int64_t breaker_wait_ms(const char *endpoint);
/* Append the breakers' states and transitions in the Prometheus text format. */
void breaker_metrics(struct buf *out);
void breaker_configure(int threshold, double cooldown);
void breaker_shutdown(void);

#endif
