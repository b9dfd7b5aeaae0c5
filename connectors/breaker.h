/* breaker.h: circuit breakers per endpoint (scheme://host[:port]). After `threshold`
 * consecutive failures (transport errors, 5xx after retries) the circuit opens: calls
 * fail at once for `cooldown` seconds; then one trial call is let through (half-open);
 * its success closes the circuit, its failure opens it again. */
#ifndef KAGARI_BREAKER_H
#define KAGARI_BREAKER_H

/* 1 when a call to endpoint may proceed, 0 when the circuit is open. */
int breaker_allow(const char *endpoint);
void breaker_success(const char *endpoint);
void breaker_failure(const char *endpoint);
/* "closed", "open" or "half-open". */
const char *breaker_state(const char *endpoint);
void breaker_configure(int threshold, double cooldown);
void breaker_shutdown(void);

#endif
