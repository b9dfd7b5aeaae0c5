/* api_escalate.c: urgent escalations through the people's API: the open ones across the
 * caller's tenants, a tenant's list, one escalation, and an acknowledgement (which stops
 * the contact chain; it approves no action). */
#include "engine/api_escalate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/escalate.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/tenant.h"

#define API_ESC_LIST_MAX 500
#define API_ESC_COMMENT_MAX 2000

static cJSON *
esc_json(const char *tenant, const struct store_esc *e)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "id", (double)e->id);
    cJSON_AddStringToObject(o, "tenant", tenant);
    cJSON_AddNumberToObject(o, "run_id", (double)e->run_id);
    cJSON_AddStringToObject(o, "level", e->level ? e->level : "");
    cJSON_AddStringToObject(o, "subject", e->subject ? e->subject : "");
    cJSON_AddStringToObject(o, "reason", e->reason ? e->reason : "");
    cJSON_AddNumberToObject(o, "contacts", e->contacts);
    cJSON_AddNumberToObject(o, "reached", e->reached);
    cJSON_AddStringToObject(o, "state", e->state);
    apireq_add_time(o, "created", e->created_ms);
    apireq_add_time(o, "reached_at", e->reached_ms);
    apireq_add_time(o, "acked", e->acked_ms);
    if (e->acked_ms > 0) {
        cJSON_AddStringToObject(o, "acked_by", e->acked_by ? e->acked_by : "");
        cJSON_AddStringToObject(o, "acked_via", e->acked_via ? e->acked_via : "");
        cJSON_AddNumberToObject(o, "tta_ms", (double)(e->acked_ms - e->created_ms));
    } else {
        cJSON_AddNullToObject(o, "acked_by");
        cJSON_AddNullToObject(o, "acked_via");
        cJSON_AddNullToObject(o, "tta_ms");
    }
    return o;
}

/* Append t's escalations in state (NULL: all) to arr; -1 when the store fails. */
static int
esc_add(cJSON *arr, struct tenant *t, const char *state)
{
    struct store_esc *v = NULL;
    size_t n = 0;

    if (store_esc_list(t->db, API_ESC_LIST_MAX, &v, &n, NULL) == -1) {
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (state == NULL || strcmp(v[i].state, state) == 0) {
            cJSON_AddItemToArray(arr, esc_json(t->id, &v[i]));
        }
        store_esc_free(&v[i]);
    }
    free(v);
    return 0;
}

void
api_escalations_all(struct api_req *r)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "escalations");

    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        if (apireq_roles_in(r, t->id) != 0) {
            (void)esc_add(arr, t, "open");
        }
    }
    apireq_json(r, 200, o);
}

void
api_escalations(struct api_req *r)
{
    const char *state = http_request_param(r->http, "state");
    struct tenant *t = tenant_find(r->param[0]);
    cJSON *o, *arr;

    if (state != NULL && strcmp(state, "open") != 0 && strcmp(state, "acked") != 0 &&
        strcmp(state, "exhausted") != 0) {
        apireq_error(r, 400, "bad_request", "state: open, acked or exhausted");
        return;
    }
    if (t == NULL) {
        apireq_not_found(r);
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "escalations");
    if (esc_add(arr, t, state) == -1) {
        cJSON_Delete(o);
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    apireq_json(r, 200, o);
}

/* One escalation of t as JSON, or NULL (unknown id). */
static cJSON *
esc_one(struct tenant *t, int64_t id)
{
    struct store_esc e;
    cJSON *o;

    if (id < 1 || store_esc_get(t->db, id, &e, NULL) != 1) {
        return NULL;
    }
    o = esc_json(t->id, &e);
    store_esc_free(&e);
    return o;
}

void
api_escalation(struct api_req *r)
{
    struct tenant *t = tenant_find(r->param[0]);
    cJSON *o = t ? esc_one(t, apireq_parse_id(r->param[1])) : NULL;

    if (o == NULL) {
        apireq_not_found(r);
        return;
    }
    apireq_json(r, 200, o);
}

struct api_ack {
    struct api_req *r;
    char *detail; /* the audit row's detail */
};

/* After the commit of the acknowledgement: audit it, answer with the escalation. */
static void
acked(void *arg, int ok)
{
    struct api_ack *a = arg;
    struct api_req *r = a->r;
    struct tenant *t = tenant_find(r->param[0]);
    char target[48];
    cJSON *o;

    snprintf(target, sizeof(target), "escalation:%lld", (long long)apireq_parse_id(r->param[1]));
    apireq_audit(r, r->param[0], "escalation.ack", target, ok ? "ok" : "failed", a->detail);
    free(a->detail);
    free(a);
    if (!ok || t == NULL) {
        apireq_error(r, 503, "store_unavailable", "the acknowledgement could not be stored; retry");
        return;
    }
    o = esc_one(t, apireq_parse_id(r->param[1]));
    if (o == NULL) {
        apireq_error(r, 500, "internal", "the escalation could not be read back");
        return;
    }
    apireq_json(r, 200, o);
}

void
api_escalation_ack(struct api_req *r)
{
    struct tenant *t = tenant_find(r->param[0]);
    int64_t id = apireq_parse_id(r->param[1]);
    size_t len = 0;
    const char *body = http_request_body(r->http, &len), *comment = NULL;
    cJSON *root = NULL, *d;
    struct store_esc e;
    struct api_ack *a;
    char target[48], *err = NULL, *msg;
    int rc;

    if (t == NULL || id < 1) {
        apireq_not_found(r);
        return;
    }
    snprintf(target, sizeof(target), "escalation:%lld", (long long)id);
    /* The body is optional: {} or {"comment": text}. */
    if (body != NULL && len > 0) {
        if (json_parse_strict(body, len, 4, &root, &err) == -1 || !cJSON_IsObject(root)) {
            apireq_error(r, 400, "bad_json", err ? err : "expected a JSON object");
            free(err);
            cJSON_Delete(root);
            return;
        }
        comment = json_get_string(root, "comment");
        if ((json_get(root, "comment") != NULL &&
             (comment == NULL || strlen(comment) > API_ESC_COMMENT_MAX)) ||
            cJSON_GetArraySize(root) > (json_get(root, "comment") != NULL ? 1 : 0)) {
            cJSON_Delete(root);
            apireq_error(r, 400, "bad_request", "expected {} or {\"comment\": text}");
            return;
        }
    }
    rc = store_esc_get(t->db, id, &e, NULL);
    if (rc != 1) {
        cJSON_Delete(root);
        if (rc == 0) {
            apireq_audit(r, t->id, "escalation.ack", target, "not_found", NULL);
            apireq_not_found(r);
        } else {
            apireq_error(r, 503, "store_unavailable", "retry");
        }
        return;
    }
    if (e.acked_ms > 0) {
        msg = xasprintf("the escalation was acknowledged already (by %s via %s)",
                        e.acked_by ? e.acked_by : "?", e.acked_via ? e.acked_via : "?");
        store_esc_free(&e);
        cJSON_Delete(root);
        apireq_audit(r, t->id, "escalation.ack", target, "refused", NULL);
        apireq_error(r, 409, "conflict", msg);
        free(msg);
        return;
    }
    store_esc_free(&e);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "via", "api");
    if (comment != NULL) {
        cJSON_AddStringToObject(d, "comment", comment);
    }
    a = xcalloc(1, sizeof(*a));
    a->r = r;
    a->detail = json_print(d);
    cJSON_Delete(d);
    cJSON_Delete(root);
    rc = escalate_ack(t, id, r->user.name, "api", acked, a, &err);
    if (rc == 1) {
        return; /* answered by acked() after the commit */
    }
    free(a->detail);
    free(a);
    if (rc == 0) {
        apireq_audit(r, t->id, "escalation.ack", target, "refused", NULL);
        apireq_error(r, 409, "conflict", "the escalation was acknowledged already");
    } else {
        log_warn("api.escalation_ack_failed tenant=%s escalation=%lld error=%s", t->id,
                 (long long)id, log_quote(err ? err : "?"));
        apireq_error(r, 503, "store_unavailable", "the acknowledgement could not be stored; retry");
    }
    free(err);
}
