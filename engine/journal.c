/* journal.c: freeing run journal entries and naming their status. */
#include "engine/journal.h"

#include <stdlib.h>

/* Free the strings of one entry and zero it; the struct itself is the caller's.
 * NULL is a no-op. */
void
journal_entry_free(struct journal_entry *e)
{
    if (e == NULL) {
        return;
    }
    free(e->kind);
    free(e->request);
    free(e->result);
    free(e->waits);
    e->kind = NULL;
    e->request = NULL;
    e->result = NULL;
    e->waits = NULL;
}

/* Free n entries and the array that holds them (as returned by store_journal_load). */
void
journal_entries_free(struct journal_entry *e, size_t n)
{
    if (e == NULL) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        journal_entry_free(&e[i]);
    }
    free(e);
}

const char *
journal_status_name(int status)
{
    switch (status) {
    case JOURNAL_STARTED:
        return "started";
    case JOURNAL_DONE:
        return "done";
    case JOURNAL_FAILED:
        return "failed";
    default:
        return "?";
    }
}
