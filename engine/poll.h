/* poll.h: the engine's side of polling sources (the Graph poller, later others). What
 * a poller calls is part of the plug-in API, declared in engine/kagari.h ("polling
 * sources"): a durable cursor per stream in the tenant's database, written in the loop's
 * transaction and reported after its commit; one pulled record normalized on its own;
 * the tenants to poll. engine/poll.c implements it. */
#ifndef KAGARI_POLL_H
#define KAGARI_POLL_H

#include "engine/kagari.h"

#endif
