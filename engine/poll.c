/* poll.c: the engine's side of polling sources: cursors in the tenant database, written
 * in the loop's transaction; normalizing one pulled record. */
#include "engine/poll.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "engine/json.h"
#include "engine/loop.h"
#include "engine/normalize.h"
#include "engine/store.h"
#include "engine/tenant.h"

struct tenant *
poll_tenant_next(const struct tenant *t)
{
    return t == NULL ? tenants_first() : t->next;
}

int
poll_cursor_get(struct tenant *t, const char *stream, char **value, char **errp)
{
    return store_cursor_get(t->db, stream, value, errp);
}

int
poll_cursor_put(struct tenant *t, const char *stream, const char *value, poll_commit_fn done,
                void *arg, char **errp)
{
    if (loop_write(t->db, errp) == -1 || store_cursor_put(t->db, stream, value, errp) == -1) {
        return -1;
    }
    loop_after_commit(t->db, done, arg);
    return 0;
}

int
poll_normalize(const char *rec, size_t len, const char *hint, int64_t received_ms, struct alert *a,
               char **errp)
{
    cJSON *root = NULL;
    int rc;

    memset(a, 0, sizeof(*a));
    if (json_parse_strict(rec, len, JSON_MAX_DEPTH, &root, errp) == -1) {
        return -1;
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return kg_err(errp, "expected a JSON object");
    }
    rc = normalize_vendor_record(root, rec, len, hint, received_ms, a, NULL, errp);
    cJSON_Delete(root);
    return rc;
}
