/* testclock.h: a test build's clock control. With `testing = { clock = true }` (refused
 * by a build without KAGARI_TEST_HOOKS) the control socket takes "clock +SECONDS" or
 * "clock +15m" to move the engine's wall clock forward (util_now_ms), kept in
 * <data>/test-clock; the durable timers (approval deadlines, escalation waits, sleeps
 * that start later) follow it. Documented in docs/operator-guide.md ("Test clock"). */
#ifndef KAGARI_TESTCLOCK_H
#define KAGARI_TESTCLOCK_H

#include "engine/config.h"
#include "engine/util.h"

/* Make the testing block known to the configuration loader (before loading). */
void testclock_config_init(void);
/* With the test clock on in cfg: read the stored shift and apply it to util_now_ms; the
 * daemon (daemon 1) also logs loudly that the clock can be moved and exports the shift in
 * /metrics. Nothing when it is off. -1 with *errp for an unreadable shift file. */
int testclock_apply(const struct config *cfg, int daemon, char **errp) KG_WUR;
/* 1 when the test clock is on in this process. */
int testclock_on(void);
/* Answer the control request verb ("clock" or "clock +N"): JSON into reply. */
void testclock_control(const char *verb, struct buf *reply);
/* Answer "stall MS" (1 to 10000): the loop thread sleeps that long, as it would in a
 * commit on a very slow disk, then answers. Only with the test clock on. */
void testclock_stall(const char *verb, struct buf *reply);
/* The daemon's end: no shift, no metrics. */
void testclock_stop(void);

#endif
