/* admit.h: the admit step's start and stop, for the daemon. What sources call
 * (admit_alerts) is part of the plug-in API, engine/kagari.h. */
#ifndef KAGARI_ADMIT_H
#define KAGARI_ADMIT_H

#include "engine/kagari.h"

/* Register the admit phase (LOOP_PHASE_ADMIT) and its metrics. */
void admit_init(void);
/* Answer every queued batch ADMIT_SHUTTING_DOWN. */
void admit_shutdown(void);

#endif
