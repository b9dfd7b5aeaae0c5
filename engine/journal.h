/* journal.h: one entry of a run's journal (docs/ARCHITECTURE.md "Durable runs"). */
#ifndef KAGARI_JOURNAL_H
#define KAGARI_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

enum journal_status {
    JOURNAL_STARTED = 0, /* recorded before the effect happened; no result yet */
    JOURNAL_DONE = 1,    /* finished; result holds its value */
    JOURNAL_FAILED = 2,  /* finished with an error; result holds the message (JSON string) */
};

/* Caps on what a journal entry stores (docs/playbooks.md "Sizes"). An effect whose
 * request is larger fails with a message instead of being stored or performed; a larger
 * result fails the effect (cutting JSON would leave no JSON). A failure message is cut
 * to JOURNAL_MESSAGE_MAX bytes with a marker saying how much was dropped. Every stored
 * value is valid UTF-8 JSON: bytes that are not UTF-8 become U+FFFD. */
#define JOURNAL_REQUEST_MAX (4u << 20)
#define JOURNAL_RESULT_MAX (8u << 20)
#define JOURNAL_MESSAGE_MAX (16u << 10)

/* Every string is owned by the entry; journal_entry_free() frees them. */
struct journal_entry {
    int64_t run_id;
    int seq;       /* 1, 2, 3 ... in the order the playbook asked for effects */
    char *kind;    /* "sleep", "now", "log", "graph.disable_user", ... */
    char *request; /* JSON text: the effect's arguments, compared on replay */
    char *result;  /* JSON text or NULL while started */
    int status;    /* enum journal_status */
    int64_t started_ms;
    int64_t ended_ms; /* 0 while started */
    /* The waits inside the effect (throttling, backoff, an open breaker), as a JSON array
     * of {"reason","status","at","until"}, or NULL; throttled_until is the end of the
     * current throttling wait (ms since the epoch), 0 when not throttled. */
    char *waits;
    int64_t throttled_until;
};

/* An entry keeps its waits up to this many bytes of JSON; later ones are only logged. */
#define JOURNAL_WAITS_MAX (4u << 10)

void journal_entry_free(struct journal_entry *e);
void journal_entries_free(struct journal_entry *e, size_t n); /* frees the array too */
const char *journal_status_name(int status);                  /* "started", "done", "failed" */

#endif
