/* control.h: the daemon's local control channel. A unix socket, <data>/control.sock,
 * created owner-only (0600, in the 0700 data folder) by the daemon that holds the data
 * folder's lock; `kagari status`, `kagari reload` and `kagari stop` talk to it. Only a
 * client with the daemon's own uid (or root) is answered.
 *
 * The protocol is one request line ("status", "reload", "stop", or "clock [+SECONDS]" for
 * a test build's test clock, engine/testclock.h; at most 64 bytes, ended by LF) and one
 * JSON reply, after which the daemon closes the connection. */
#ifndef KAGARI_CONTROL_H
#define KAGARI_CONTROL_H

#include <event2/event.h>

#include "engine/util.h"

#define CONTROL_SOCKET "control.sock"

struct control; /* owned by the caller of control_start; control_free */

/* Answer one request: append a JSON object to reply. verb is the request line without
 * its LF. An unknown verb is answered by the channel itself. */
typedef void (*control_handler)(const char *verb, struct buf *reply, void *arg);

/* Listen on <data_dir>/control.sock. A socket file left there by a daemon that died is
 * removed first: the caller holds the data folder's lock, so no live daemon owns it. */
struct control *control_start(struct event_base *base, const char *data_dir, control_handler fn,
                              void *arg, char **errp);
/* Stop listening and remove the socket file. NULL is a no-op. */
void control_free(struct control *c);

/* The client side (the CLI): send verb to the daemon of data_dir and read its reply into
 * *reply (malloc'd, NUL-terminated; the caller frees it), waiting at most timeout_ms.
 * Returns 0; 1 when no daemon listens there (no socket, or nobody accepting); -1 with
 * *errp on any other failure. */
int control_request(const char *data_dir, const char *verb, int timeout_ms, char **reply,
                    char **errp) KG_WUR;

#endif
