/* api_approve.c: approvals through the people's API. */
#include "engine/api_approve.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/approval.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/tenant.h"

static cJSON *
approval_json(const char *tenant, const struct store_approval *a)
{
    cJSON *o = cJSON_CreateObject();

    cJSON_AddNumberToObject(o, "id", (double)a->id);
    cJSON_AddStringToObject(o, "tenant", tenant);
    cJSON_AddNumberToObject(o, "run_id", (double)a->run_id);
    cJSON_AddStringToObject(o, "title", a->title ? a->title : "");
    if (a->detail != NULL) {
        cJSON_AddStringToObject(o, "detail", a->detail);
    } else {
        cJSON_AddNullToObject(o, "detail");
    }
    {
        cJSON *e = cJSON_Parse(a->effects ? a->effects : "[]");

        cJSON_AddItemToObject(o, "effects", e ? e : cJSON_CreateArray());
    }
    cJSON_AddStringToObject(o, "role", a->role);
    cJSON_AddNumberToObject(o, "approvers", a->approvers);
    cJSON_AddStringToObject(o, "default", a->default_decision);
    cJSON_AddStringToObject(o, "state", a->state);
    apireq_add_time(o, "created", a->created);
    apireq_add_time(o, "deadline", a->deadline);
    apireq_add_time(o, "decided", a->decided);
    return o;
}

void
api_approvals_all(struct api_req *r)
{
    cJSON *o = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(o, "approvals");

    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        struct store_approval *v = NULL;
        size_t n = 0;

        if (apireq_roles_in(r, t->id) == 0 ||
            store_approval_list(t->db, "pending", 500, &v, &n, NULL) == -1) {
            continue;
        }
        for (size_t i = 0; i < n; i++) {
            struct store_run run;
            int over = 0;

            /* A run that ended while waiting (its deadline) leaves its approval moot. */
            if (store_run_get(t->db, v[i].run_id, &run, NULL) == 1) {
                over = strcmp(run.state, "done") == 0 || strcmp(run.state, "failed") == 0 ||
                       strcmp(run.state, "cancelled") == 0;
                store_run_free(&run);
            }
            if (!over) {
                cJSON_AddItemToArray(arr, approval_json(t->id, &v[i]));
            }
        }
        store_approvals_free(v, n);
    }
    apireq_json(r, 200, o);
}

void
api_approvals(struct api_req *r)
{
    static const char *const states[] = { "pending", "approved", "rejected", "expired",
                                          "cancelled" };
    const char *state = http_request_param(r->http, "state");
    struct tenant *t = tenant_find(r->param[0]);
    struct store_approval *v = NULL;
    size_t n = 0;
    int ok = state == NULL;
    cJSON *o, *arr;

    for (size_t i = 0; i < sizeof(states) / sizeof(states[0]) && !ok; i++) {
        ok = strcmp(state, states[i]) == 0;
    }
    if (!ok) {
        apireq_error(r, 400, "bad_request",
                     "state: pending, approved, rejected, expired or cancelled");
        return;
    }
    if (t == NULL) {
        apireq_not_found(r);
        return;
    }
    if (store_approval_list(t->db, state, 500, &v, &n, NULL) == -1) {
        apireq_error(r, 503, "store_unavailable", "retry");
        return;
    }
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "approvals");
    for (size_t i = 0; i < n; i++) {
        cJSON_AddItemToArray(arr, approval_json(t->id, &v[i]));
    }
    store_approvals_free(v, n);
    apireq_json(r, 200, o);
}

/* One approval with its votes, or NULL (unknown). */
static cJSON *
approval_full(struct tenant *t, int64_t id)
{
    struct store_approval a;
    struct store_vote *v = NULL;
    size_t n = 0;
    cJSON *o, *votes;

    if (id < 1 || store_approval_get(t->db, id, &a, NULL) != 1) {
        return NULL;
    }
    o = approval_json(t->id, &a);
    store_approval_free(&a);
    votes = cJSON_AddArrayToObject(o, "votes");
    if (store_approval_votes(t->db, id, &v, &n, NULL) == 0) {
        for (size_t i = 0; i < n; i++) {
            cJSON *e = cJSON_CreateObject();

            cJSON_AddStringToObject(e, "user", v[i].user);
            cJSON_AddStringToObject(e, "decision", v[i].decision);
            if (v[i].comment != NULL) {
                cJSON_AddStringToObject(e, "comment", v[i].comment);
            } else {
                cJSON_AddNullToObject(e, "comment");
            }
            apireq_add_time(e, "at", v[i].at);
            cJSON_AddItemToArray(votes, e);
        }
    }
    store_votes_free(v, n);
    return o;
}

void
api_approval(struct api_req *r)
{
    struct tenant *t = tenant_find(r->param[0]);
    cJSON *o = t ? approval_full(t, apireq_parse_id(r->param[1])) : NULL;

    if (o == NULL) {
        apireq_not_found(r);
        return;
    }
    apireq_json(r, 200, o);
}

/* After the commit that made the vote durable: answer with the approval as it stands. */
static void
decided(void *arg, int ok)
{
    struct api_req *r = arg;
    struct tenant *t = tenant_find(r->param[0]);
    cJSON *o;

    if (!ok || t == NULL) {
        apireq_error(r, 503, "store_unavailable", "the decision could not be stored; retry");
        return;
    }
    o = approval_full(t, apireq_parse_id(r->param[1]));
    if (o == NULL) {
        apireq_error(r, 500, "internal", "the approval could not be read back");
        return;
    }
    apireq_json(r, 200, o);
}

void
api_approval_decide(struct api_req *r)
{
    static const char *const names[] = { "admin", "engineer", "analyst", "auditor", "operator" };
    struct tenant *t = tenant_find(r->param[0]);
    int64_t id = apireq_parse_id(r->param[1]);
    const char *decision, *comment;
    const char *roles[5];
    size_t nroles = 0;
    int bits = apireq_roles_in(r, r->param[0]);
    enum approval_refusal why = APPROVAL_NOT_FOUND;
    cJSON *root;
    char *err = NULL, detail[160];

    if (t == NULL || id < 1) {
        apireq_not_found(r);
        return;
    }
    if ((root = apireq_body_object(r)) == NULL) {
        return;
    }
    decision = json_get_string(root, "decision");
    comment = json_get_string(root, "comment");
    if (decision == NULL || (strcmp(decision, "approve") != 0 && strcmp(decision, "reject") != 0) ||
        (json_get(root, "comment") != NULL &&
         (comment == NULL || strlen(comment) > APPROVAL_COMMENT_MAX))) {
        cJSON_Delete(root);
        apireq_error(r, 400, "bad_request",
                     "expected {\"decision\": \"approve\" or \"reject\", \"comment\": text}");
        return;
    }
    for (int i = 0; i < 5; i++) {
        if (bits & (1 << i)) {
            roles[nroles++] = names[i];
        }
    }
    snprintf(detail, sizeof(detail), "{\"decision\":\"%s\"}", decision);
    {
        char target[48];

        snprintf(target, sizeof(target), "approval:%lld", (long long)id);
        if (approval_decide(t, id, r->user.name, roles, nroles, strcmp(decision, "approve") == 0,
                            comment, decided, r, &why, &err) == -1) {
            cJSON_Delete(root);
            apireq_audit(r, t->id, "approval.decision", target,
                         why == APPROVAL_FORBIDDEN   ? "forbidden"
                         : why == APPROVAL_CONFLICT  ? "refused"
                         : why == APPROVAL_NOT_FOUND ? "not_found"
                                                     : "failed",
                         detail);
            if (why == APPROVAL_NOT_FOUND) {
                apireq_not_found(r);
            } else {
                apireq_error(r, (int)why,
                             why == APPROVAL_FORBIDDEN  ? "forbidden"
                             : why == APPROVAL_CONFLICT ? "conflict"
                                                        : "store_unavailable",
                             err ? err : "refused");
            }
            free(err);
            return;
        }
        apireq_audit(r, t->id, "approval.decision", target, "ok", detail);
    }
    cJSON_Delete(root);
    /* r is answered by decided() after the commit. */
}
