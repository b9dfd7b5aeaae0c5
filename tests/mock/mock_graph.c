/* mock_graph.c: Microsoft Graph v1.0 in the mock: users (get, list, PATCH, revoke
 * sessions), auditLogs/signIns, Identity Protection (riskyUsers, riskDetections) and the
 * security API (alerts_v2, incidents). Reference sections 2-4. */
#include "tests/mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/json.h"

/* ---- query options ---- */

/* Refuse $-options the route does not take (allowed: "$select,$filter"). 0 after
 * answering 400. */
static int
options_ok(struct mreq *r, const char *allowed)
{
    for (size_t i = 0; i < r->h->nparams; i++) {
        const char *n = r->h->pnames[i];
        const char *p = allowed;
        size_t len = strlen(n);
        int ok = 0;

        if (n[0] != '$') {
            continue;
        }
        while (*p != '\0' && !ok) {
            size_t el = strcspn(p, ",");

            ok = el == len && strncmp(p, n, len) == 0;
            p += el + (p[el] == ',' ? 1 : 0);
        }
        if (!ok) {
            mreq_error(r, 400, "BadRequest", "Query option '%s' is not allowed on this resource.",
                       n);
            return 0;
        }
    }
    return 1;
}

/* Parse $filter against props (absent: f->n = 0). 0 after answering 400. */
static int
filter_ok(struct mreq *r, const struct fprop *props, struct filter *f, const char *code)
{
    const char *text = mhttp_param(r->h, "$filter");
    char *err = NULL;

    memset(f, 0, sizeof(*f));
    if (text == NULL) {
        return 1;
    }
    if (filter_parse(text, props, f, &err) == -1) {
        mreq_error(r, 400, code, "Invalid filter clause: %s", err);
        free(err);
        return 0;
    }
    return 1;
}

static cJSON *
render_copy(void *item, struct mreq *r, void *ctx)
{
    (void)r;
    (void)ctx;
    return cJSON_Duplicate(item, 1);
}

static void
now_str(char out[32])
{
    mock_fmt_now(out);
}

/* ---- users ---- */

static const char *const user_default_props[] = {
    "businessPhones", "displayName",    "givenName",         "id",      "jobTitle",          "mail",
    "mobilePhone",    "officeLocation", "preferredLanguage", "surname", "userPrincipalName", NULL
};

static const char *const user_more_props[] = { "accountEnabled",
                                               "onPremisesSyncEnabled",
                                               "signInSessionsValidFromDateTime",
                                               "createdDateTime",
                                               "department",
                                               "usageLocation",
                                               "userType",
                                               "onPremisesSamAccountName",
                                               "onPremisesDomainName",
                                               "onPremisesImmutableId",
                                               "onPremisesLastSyncDateTime",
                                               "onPremisesDistinguishedName",
                                               "employeeId",
                                               "companyName",
                                               "city",
                                               "country",
                                               "lastPasswordChangeDateTime",
                                               "otherMails",
                                               "proxyAddresses",
                                               "externalUserState",
                                               "creationType",
                                               "mailNickname",
                                               "state",
                                               "streetAddress",
                                               "postalCode",
                                               "passwordPolicies",
                                               "identities",
                                               "assignedLicenses",
                                               NULL };

static const char *const user_writable[] = { "displayName",    "jobTitle",    "department",
                                             "officeLocation", "mobilePhone", "usageLocation",
                                             "givenName",      "surname",     "companyName",
                                             "employeeId",     NULL };

static int
in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; list++) {
        if (strcmp(*list, s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* $select as an array of property names (NULL when absent); -1 after answering 400. */
static int
user_select(struct mreq *r, cJSON **out)
{
    const char *sel = mhttp_param(r->h, "$select");
    cJSON *arr;
    const char *p;

    *out = NULL;
    if (sel == NULL) {
        return 0;
    }
    arr = cJSON_CreateArray();
    p = sel;
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        char name[80];

        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        if (n == 0 || n >= sizeof(name)) {
            cJSON_Delete(arr);
            mreq_graph_error(r, 400, "Request_BadRequest", "Invalid $select clause.");
            return -1;
        }
        memcpy(name, p, n);
        name[n] = '\0';
        while (n > 0 && name[n - 1] == ' ') {
            name[--n] = '\0';
        }
        if (!in_list(user_default_props, name) && !in_list(user_more_props, name)) {
            cJSON_Delete(arr);
            mreq_graph_error(r, 400, "Request_BadRequest",
                             "Could not find a property named '%s' on type "
                             "'Microsoft.DirectoryServices.User'.",
                             name);
            return -1;
        }
        cJSON_AddItemToArray(arr, cJSON_CreateString(name));
        p += strcspn(p, ",");
        if (*p == ',') {
            p++;
        }
    }
    *out = arr;
    return 0;
}

static cJSON *
render_user(void *item, struct mreq *r, void *ctx)
{
    struct m_user *u = item;
    const cJSON *sel = ctx, *it;
    cJSON *o = cJSON_CreateObject();

    (void)r;
    if (sel != NULL) {
        cJSON_ArrayForEach(it, sel)
        {
            const cJSON *v = json_get(u->obj, it->valuestring);

            cJSON_AddItemToObject(o, it->valuestring,
                                  v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
        }
        return o;
    }
    for (size_t i = 0; user_default_props[i] != NULL; i++) {
        const cJSON *v = json_get(u->obj, user_default_props[i]);

        cJSON_AddItemToObject(o, user_default_props[i],
                              v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    return o;
}

static struct m_user *
find_user(struct mreq *r)
{
    struct m_user *u = mock_user(r->cap[0]);

    if (u == NULL) {
        mreq_graph_error(r, 404, "Request_ResourceNotFound",
                         "Resource '%s' does not exist or one of its queried reference-property "
                         "objects are not present.",
                         r->cap[0]);
    }
    return u;
}

static void
users_get(struct mreq *r)
{
    struct m_user *u;
    cJSON *sel, *o;
    char *ctx;

    if (!options_ok(r, "$select") || (u = find_user(r)) == NULL || user_select(r, &sel) == -1) {
        return;
    }
    o = render_user(u, r, sel);
    ctx = xasprintf("%s/v1.0/$metadata#users/$entity", r->base);
    cJSON_AddItemToObject(o, "@odata.context", cJSON_CreateString(ctx));
    free(ctx);
    cJSON_Delete(sel);
    mreq_json(r, 200, o);
}

static const struct fprop user_filter[] = {
    { "userPrincipalName", FT_STR, OP_EQ | OP_SW },
    { "mail", FT_STR, OP_EQ | OP_SW },
    { "id", FT_STR, OP_EQ },
    { "displayName", FT_STR, OP_EQ | OP_SW },
    { "accountEnabled", FT_BOOL, OP_EQ | OP_NE },
    { "onPremisesSyncEnabled", FT_BOOL, OP_EQ | OP_NE },
    { "userType", FT_STR, OP_EQ },
    { NULL, 0, 0 },
};

static void
users_list(struct mreq *r)
{
    struct filter f;
    cJSON *sel;
    struct mvec hits = { 0 };

    if (!options_ok(r, "$select,$filter,$top,$skiptoken,$count") ||
        !filter_ok(r, user_filter, &f, "Request_UnsupportedQuery")) {
        return;
    }
    if (user_select(r, &sel) == -1) {
        filter_free(&f);
        return;
    }
    for (size_t i = 0; i < mock.users.n; i++) {
        struct m_user *u = mock.users.v[i];

        if (filter_match(&f, u->obj)) {
            mvec_push(&hits, u);
        }
    }
    mock_page(r, hits.v, hits.n, 100, 999, "users", render_user, sel);
    mvec_free(&hits);
    cJSON_Delete(sel);
    filter_free(&f);
}

/* PATCH /users/{id}: 204 even when nothing changes; privileged targets 403; users whose
 * source of authority is on-premises 400. */
static void
users_patch(struct mreq *r)
{
    struct m_user *u;
    cJSON *body, *it;
    const cJSON *ae;

    if (!options_ok(r, "") || (u = find_user(r)) == NULL) {
        return;
    }
    body = mreq_body_object(r, 0, "BadRequest");
    if (body == NULL) {
        return;
    }
    cJSON_ArrayForEach(it, body)
    {
        if (strcmp(it->string, "accountEnabled") == 0) {
            if (!cJSON_IsBool(it)) {
                mreq_graph_error(r, 400, "Request_BadRequest",
                                 "Invalid value specified for property 'accountEnabled' of "
                                 "resource 'User'.");
                goto out;
            }
        } else if (in_list(user_writable, it->string)) {
            if (!cJSON_IsString(it) && !cJSON_IsNull(it)) {
                mreq_graph_error(r, 400, "Request_BadRequest",
                                 "Invalid value specified for property '%s' of resource 'User'.",
                                 it->string);
                goto out;
            }
        } else {
            mreq_graph_error(r, 400, "Request_BadRequest",
                             "Property '%s' is read-only or does not exist on type "
                             "'microsoft.graph.user'.",
                             it->string);
            goto out;
        }
    }
    if (u->privileged) {
        mreq_graph_error(r, 403, "Authorization_RequestDenied",
                         "Insufficient privileges to complete the operation.");
        goto out;
    }
    if (cJSON_IsTrue(json_get(u->obj, "onPremisesSyncEnabled"))) {
        mreq_graph_error(r, 400, "Request_BadRequest",
                         "Unable to update the specified properties for on-premises mastered "
                         "Directory Sync objects or objects currently undergoing migration.");
        goto out;
    }
    u->n_patch++;
    ae = json_get(body, "accountEnabled");
    if (ae != NULL) {
        if (cJSON_IsTrue(ae)) {
            u->n_enable++;
        } else {
            u->n_disable++;
        }
    }
    cJSON_ArrayForEach(it, body)
    {
        jset(u->obj, it->string, cJSON_Duplicate(it, 1));
    }
    mreq_empty(r, 204);
out:
    cJSON_Delete(body);
}

static void
users_revoke(struct mreq *r)
{
    struct m_user *u;
    cJSON *o;
    char now[32], *ctx;

    if (!options_ok(r, "") || (u = find_user(r)) == NULL) {
        return;
    }
    if (u->privileged) {
        mreq_graph_error(r, 403, "Authorization_RequestDenied",
                         "Insufficient privileges to complete the operation.");
        return;
    }
    u->n_revoke++;
    now_str(now);
    jset_str(u->obj, "signInSessionsValidFromDateTime", now);
    o = cJSON_CreateObject();
    ctx = xasprintf("%s/v1.0/$metadata#Edm.Boolean", r->base);
    cJSON_AddStringToObject(o, "@odata.context", ctx);
    free(ctx);
    cJSON_AddBoolToObject(o, "value", 1);
    mreq_json(r, 200, o);
}

/* ---- sign-ins ---- */

static const struct fprop signin_filter[] = {
    { "userPrincipalName", FT_STR, OP_EQ | OP_SW },
    { "userId", FT_STR, OP_EQ },
    { "userDisplayName", FT_STR, OP_EQ },
    { "createdDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "status/errorCode", FT_NUM, OP_EQ | OP_NE },
    { "ipAddress", FT_STR, OP_EQ | OP_SW },
    { "appId", FT_STR, OP_EQ },
    { "appDisplayName", FT_STR, OP_EQ },
    { "clientAppUsed", FT_STR, OP_EQ },
    { "conditionalAccessStatus", FT_STR, OP_EQ },
    { "correlationId", FT_STR, OP_EQ },
    { "id", FT_STR, OP_EQ },
    { "isInteractive", FT_BOOL, OP_EQ },
    { "riskLevelDuringSignIn", FT_STR, OP_EQ },
    { "riskState", FT_STR, OP_EQ },
    { "location/city", FT_STR, OP_EQ },
    { "location/countryOrRegion", FT_STR, OP_EQ },
    { NULL, 0, 0 },
};

static int
signins_licensed(struct mreq *r)
{
    if (!mock.cfg.signins_premium) {
        mreq_graph_error(r, 403, "Authentication_RequestFromNonPremiumTenantOrB2CTenant",
                         "Neither tenant is B2C or tenant doesn't have premium license");
        return 0;
    }
    return 1;
}

static void
signins_list(struct mreq *r)
{
    struct filter f;
    struct mvec hits = { 0 };
    const char *ob = mhttp_param(r->h, "$orderby");

    if (!options_ok(r, "$filter,$top,$skiptoken,$orderby") || !signins_licensed(r) ||
        !filter_ok(r, signin_filter, &f, "BadRequest")) {
        return;
    }
    if (ob != NULL && strcmp(ob, "createdDateTime desc") != 0) {
        filter_free(&f);
        mreq_graph_error(r, 400, "BadRequest", "$orderby supports only 'createdDateTime desc'.");
        return;
    }
    for (size_t i = 0; i < mock.signins.n; i++) {
        if (filter_match(&f, mock.signins.v[i])) {
            mvec_push(&hits, mock.signins.v[i]);
        }
    }
    mock_page(r, hits.v, hits.n, 1000, 1000, "auditLogs/signIns", render_copy, NULL);
    mvec_free(&hits);
    filter_free(&f);
}

static void
signins_get(struct mreq *r)
{
    if (!options_ok(r, "") || !signins_licensed(r)) {
        return;
    }
    for (size_t i = 0; i < mock.signins.n; i++) {
        if (strcasecmp(jstr(mock.signins.v[i], "id"), r->cap[0]) == 0) {
            mreq_json(r, 200, cJSON_Duplicate(mock.signins.v[i], 1));
            return;
        }
    }
    mreq_graph_error(r, 404, "ResourceNotFound", "Sign-in '%s' was not found.", r->cap[0]);
}

/* ---- Identity Protection ---- */

/* A risky user as the next reader sees it: while a confirm/dismiss is being processed,
 * processing_reads reads show isProcessing:true and the old state; then the final state
 * is applied (with a history entry) and shown. */
static cJSON *
render_risky(void *item, struct mreq *r, void *ctx)
{
    struct m_risky *ru = item;
    cJSON *o;

    (void)r;
    (void)ctx;
    if (ru->pending && ru->pending_reads > 0) {
        ru->pending_reads--;
        o = cJSON_Duplicate(ru->obj, 1);
        jset(o, "isProcessing", cJSON_CreateBool(1));
        return o;
    }
    if (ru->pending) {
        char now[32], hid[37];
        cJSON *h = cJSON_CreateObject(), *act;

        now_str(now);
        jset_str(ru->obj, "riskLevel", ru->pend_level);
        jset_str(ru->obj, "riskState", ru->pend_state);
        jset_str(ru->obj, "riskDetail", ru->pend_detail);
        jset_str(ru->obj, "riskLastUpdatedDateTime", now);
        jset(ru->obj, "isProcessing", cJSON_CreateBool(0));
        mock_seq_uuid(0x415700ffu, mock.next_history++, hid);
        cJSON_AddStringToObject(h, "id", hid);
        cJSON_AddStringToObject(h, "userId", jstr(ru->obj, "id"));
        cJSON_AddStringToObject(h, "initiatedBy",
                                r != NULL && r->tok != NULL ? r->tok->client->client_id : "");
        act = cJSON_AddObjectToObject(h, "activity");
        cJSON_AddItemToObject(act, "riskEventTypes", cJSON_CreateArray());
        cJSON_AddStringToObject(act, "detail", ru->pend_detail);
        cJSON_AddStringToObject(h, "riskLevel", ru->pend_level);
        cJSON_AddStringToObject(h, "riskState", ru->pend_state);
        cJSON_AddStringToObject(h, "riskDetail", ru->pend_detail);
        cJSON_AddStringToObject(h, "riskLastUpdatedDateTime", now);
        cJSON_AddStringToObject(h, "userDisplayName", jstr(ru->obj, "userDisplayName"));
        cJSON_AddStringToObject(h, "userPrincipalName", jstr(ru->obj, "userPrincipalName"));
        cJSON_AddItemToArray(ru->history, h);
        ru->pending = 0;
    }
    return cJSON_Duplicate(ru->obj, 1);
}

static const struct fprop risky_filter[] = {
    { "riskLevel", FT_STR, OP_EQ | OP_NE },
    { "riskState", FT_STR, OP_EQ | OP_NE },
    { "riskDetail", FT_STR, OP_EQ },
    { "userPrincipalName", FT_STR, OP_EQ | OP_SW },
    { "userDisplayName", FT_STR, OP_EQ },
    { "id", FT_STR, OP_EQ },
    { "isProcessing", FT_BOOL, OP_EQ },
    { "isDeleted", FT_BOOL, OP_EQ },
    { "riskLastUpdatedDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { NULL, 0, 0 },
};

static void
risky_list(struct mreq *r)
{
    struct filter f;
    struct mvec hits = { 0 };

    if (!options_ok(r, "$filter,$top,$skiptoken,$count,$orderby") ||
        !filter_ok(r, risky_filter, &f, "BadRequest")) {
        return;
    }
    for (size_t i = 0; i < mock.risky.n; i++) {
        struct m_risky *ru = mock.risky.v[i];

        if (filter_match(&f, ru->obj)) {
            mvec_push(&hits, ru);
        }
    }
    mock_page(r, hits.v, hits.n, 100, 500, "identityProtection/riskyUsers", render_risky, NULL);
    mvec_free(&hits);
    filter_free(&f);
}

static struct m_risky *
find_risky(struct mreq *r)
{
    struct m_risky *ru = mmap_get(&mock.risky_map, r->cap[0]);

    if (ru == NULL) {
        mreq_graph_error(r, 404, "ResourceNotFound", "Risky user '%s' was not found.", r->cap[0]);
    }
    return ru;
}

static void
risky_get(struct mreq *r)
{
    struct m_risky *ru;

    if (!options_ok(r, "$select") || (ru = find_risky(r)) == NULL) {
        return;
    }
    mreq_json(r, 200, render_risky(ru, r, NULL));
}

static void
risky_history(struct mreq *r)
{
    struct m_risky *ru;
    struct mvec items = { 0 };
    const cJSON *h;

    if (!options_ok(r, "$filter,$top,$skiptoken") || (ru = find_risky(r)) == NULL) {
        return;
    }
    cJSON_ArrayForEach(h, ru->history)
    {
        mvec_push(&items, (void *)h);
    }
    mock_page(r, items.v, items.n, 100, 500, "identityProtection/riskyUsers/history", render_copy,
              NULL);
    mvec_free(&items);
}

/* confirmCompromised and dismiss: {"userIds":[...]} -> 204; unknown ids are ignored (the
 * service's behaviour there is undocumented). */
static void
risky_act(struct mreq *r, int confirm)
{
    cJSON *body = mreq_body_object(r, 0, "BadRequest");
    const cJSON *ids, *it;

    if (body == NULL) {
        return;
    }
    ids = json_get(body, "userIds");
    if (!cJSON_IsArray(ids) || cJSON_GetArraySize(ids) == 0) {
        mreq_graph_error(r, 400, "BadRequest", "userIds must be a non-empty array of user ids.");
        goto out;
    }
    cJSON_ArrayForEach(it, ids)
    {
        if (!cJSON_IsString(it)) {
            mreq_graph_error(r, 400, "BadRequest", "userIds must contain strings.");
            goto out;
        }
    }
    cJSON_ArrayForEach(it, ids)
    {
        struct m_risky *ru = mmap_get(&mock.risky_map, it->valuestring);

        if (ru == NULL) {
            continue;
        }
        ru->pending = 1;
        ru->pending_reads = mock.cfg.processing_reads;
        if (confirm) {
            ru->n_confirm++;
            snprintf(ru->pend_level, sizeof(ru->pend_level), "high");
            snprintf(ru->pend_state, sizeof(ru->pend_state), "confirmedCompromised");
            snprintf(ru->pend_detail, sizeof(ru->pend_detail), "adminConfirmedUserCompromised");
        } else {
            ru->n_dismiss++;
            snprintf(ru->pend_level, sizeof(ru->pend_level), "none");
            snprintf(ru->pend_state, sizeof(ru->pend_state), "dismissed");
            snprintf(ru->pend_detail, sizeof(ru->pend_detail), "adminDismissedAllRiskForUser");
        }
    }
    mreq_empty(r, 204);
out:
    cJSON_Delete(body);
}

static void
risky_confirm(struct mreq *r)
{
    risky_act(r, 1);
}

static void
risky_dismiss(struct mreq *r)
{
    risky_act(r, 0);
}

static const struct fprop detection_filter[] = {
    { "userPrincipalName", FT_STR, OP_EQ | OP_SW },
    { "userId", FT_STR, OP_EQ },
    { "id", FT_STR, OP_EQ },
    { "riskEventType", FT_STR, OP_EQ },
    { "riskLevel", FT_STR, OP_EQ },
    { "riskState", FT_STR, OP_EQ },
    { "ipAddress", FT_STR, OP_EQ },
    { "requestId", FT_STR, OP_EQ },
    { "correlationId", FT_STR, OP_EQ },
    { "source", FT_STR, OP_EQ },
    { "detectionTimingType", FT_STR, OP_EQ },
    { "activity", FT_STR, OP_EQ },
    { "detectedDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "activityDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "lastUpdatedDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { NULL, 0, 0 },
};

static void
detections_list(struct mreq *r)
{
    struct filter f;
    struct mvec hits = { 0 };

    if (!options_ok(r, "$filter,$top,$skiptoken,$count,$orderby") ||
        !filter_ok(r, detection_filter, &f, "BadRequest")) {
        return;
    }
    for (size_t i = 0; i < mock.detections.n; i++) {
        if (filter_match(&f, mock.detections.v[i])) {
            mvec_push(&hits, mock.detections.v[i]);
        }
    }
    mock_page(r, hits.v, hits.n, 100, 500, "identityProtection/riskDetections", render_copy, NULL);
    mvec_free(&hits);
    filter_free(&f);
}

static void
detections_get(struct mreq *r)
{
    if (!options_ok(r, "$select")) {
        return;
    }
    for (size_t i = 0; i < mock.detections.n; i++) {
        if (strcasecmp(jstr(mock.detections.v[i], "id"), r->cap[0]) == 0) {
            mreq_json(r, 200, cJSON_Duplicate(mock.detections.v[i], 1));
            return;
        }
    }
    mreq_graph_error(r, 404, "ResourceNotFound", "Risk detection '%s' was not found.", r->cap[0]);
}

/* ---- security: alerts_v2 and incidents ---- */

static const char *const alert_status[] = { "new", "inProgress", "resolved", "unknownFutureValue",
                                            NULL };
static const char *const incident_status[] = { "active",     "resolved",       "inProgress",
                                               "redirected", "awaitingAction", "unknownFutureValue",
                                               NULL };
static const char *const classifications[] = { "unknown",
                                               "falsePositive",
                                               "truePositive",
                                               "informationalExpectedActivity",
                                               "unknownFutureValue",
                                               NULL };
static const char *const determinations[] = {
    "unknown", "apt", "malware", "securityPersonnel", "securityTesting", "unwantedSoftware",
    "other", "multiStagedAttack", "compromisedUser", "phishing", "maliciousUserActivity", "clean",
    "insufficientData", "confirmedUserActivity", "lineOfBusinessApplication", "unknownFutureValue",
    /* older names still in the documentation's description table */
    "compromisedAccount", "notMalicious", "notEnoughDataToValidate", "confirmedActivity", NULL
};

/* The canonical spelling of an enum value (compared case-insensitively), or NULL. */
static const char *
enum_value(const char *const *list, const char *s)
{
    for (; *list != NULL; list++) {
        if (strcasecmp(*list, s) == 0) {
            return *list;
        }
    }
    return NULL;
}

static const struct fprop alert_filter[] = {
    { "assignedTo", FT_STR, OP_EQ | OP_NE },
    { "classification", FT_STR, OP_EQ | OP_NE },
    { "determination", FT_STR, OP_EQ | OP_NE },
    { "createdDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "lastUpdateDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "severity", FT_STR, OP_EQ | OP_NE },
    { "serviceSource", FT_STR, OP_EQ | OP_NE },
    { "detectionSource", FT_STR, OP_EQ },
    { "status", FT_STR, OP_EQ | OP_NE },
    { "incidentId", FT_STR, OP_EQ },
    { "id", FT_STR, OP_EQ },
    { NULL, 0, 0 },
};

static const struct fprop incident_filter[] = {
    { "assignedTo", FT_STR, OP_EQ | OP_NE },
    { "classification", FT_STR, OP_EQ | OP_NE },
    { "determination", FT_STR, OP_EQ | OP_NE },
    { "createdDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "lastUpdateDateTime", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "severity", FT_STR, OP_EQ | OP_NE },
    { "status", FT_STR, OP_EQ | OP_NE },
    { "id", FT_STR, OP_EQ },
    { NULL, 0, 0 },
};

/* An incident, with its alerts when expand is set. */
static cJSON *
render_incident(void *item, struct mreq *r, void *ctx)
{
    struct m_secitem *in = item;
    cJSON *o = cJSON_Duplicate(in->obj, 1), *arr;
    const char *id = jstr(in->obj, "id");

    (void)r;
    if (ctx == NULL) {
        return o;
    }
    arr = cJSON_AddArrayToObject(o, "alerts");
    for (size_t i = 0; i < mock.alerts.n; i++) {
        struct m_secitem *a = mock.alerts.v[i];
        const char *iid = jstr(a->obj, "incidentId");

        if (iid != NULL && strcmp(iid, id) == 0) {
            cJSON_AddItemToArray(arr, cJSON_Duplicate(a->obj, 1));
        }
    }
    return o;
}

/* $expand: absent (0), "alerts" (1); -1 after answering 400. */
static int
expand_alerts(struct mreq *r)
{
    const char *e = mhttp_param(r->h, "$expand");

    if (e == NULL) {
        return 0;
    }
    if (strcmp(e, "alerts") == 0) {
        return 1;
    }
    mreq_graph_error(r, 400, "BadRequest", "$expand supports only 'alerts'.");
    return -1;
}

static void
sec_list(struct mreq *r, int incidents)
{
    struct filter f;
    struct mvec hits = { 0 };
    struct mvec *src = incidents ? &mock.incidents : &mock.alerts;
    int expand = 0;

    if (!options_ok(r, incidents ? "$filter,$top,$skip,$skiptoken,$count,$expand"
                                 : "$filter,$top,$skip,$skiptoken,$count") ||
        !filter_ok(r, incidents ? incident_filter : alert_filter, &f, "BadRequest")) {
        return;
    }
    if (incidents && (expand = expand_alerts(r)) == -1) {
        filter_free(&f);
        return;
    }
    for (size_t i = 0; i < src->n; i++) {
        struct m_secitem *a = src->v[i];

        if (filter_match(&f, a->obj)) {
            mvec_push(&hits, a);
        }
    }
    if (incidents) {
        mock_page(r, hits.v, hits.n, 50, 50, "security/incidents", render_incident,
                  expand ? (void *)1 : NULL);
    } else {
        mock_page(r, hits.v, hits.n, 100, 2000, "security/alerts_v2", render_incident, NULL);
    }
    mvec_free(&hits);
    filter_free(&f);
}

static void
alerts_list(struct mreq *r)
{
    sec_list(r, 0);
}

static void
incidents_list(struct mreq *r)
{
    sec_list(r, 1);
}

static struct m_secitem *
find_sec(struct mreq *r, int incidents)
{
    struct m_secitem *a = mmap_get(incidents ? &mock.incident_map : &mock.alert_map, r->cap[0]);

    if (a == NULL) {
        mreq_graph_error(r, 404, "NotFound", "%s '%s' was not found.",
                         incidents ? "Incident" : "Alert", r->cap[0]);
    }
    return a;
}

static void
alerts_get(struct mreq *r)
{
    struct m_secitem *a;

    if (!options_ok(r, "$select") || (a = find_sec(r, 0)) == NULL) {
        return;
    }
    mreq_json(r, 200, cJSON_Duplicate(a->obj, 1));
}

static void
incidents_get(struct mreq *r)
{
    struct m_secitem *in;
    int expand;

    if (!options_ok(r, "$select,$expand") || (in = find_sec(r, 1)) == NULL ||
        (expand = expand_alerts(r)) == -1) {
        return;
    }
    mreq_json(r, 200, render_incident(in, r, expand ? (void *)1 : NULL));
}

/* Check one enum member of a PATCH body; stores the canonical value in upd. */
static int
patch_enum(struct mreq *r, const cJSON *it, const char *const *list, cJSON *upd)
{
    const char *v = cJSON_IsString(it) ? enum_value(list, it->valuestring) : NULL;

    if (v == NULL) {
        mreq_graph_error(r, 400, "BadRequest",
                         "Invalid value for '%s': requested value '%s' was not found.", it->string,
                         cJSON_IsString(it) ? it->valuestring : "(not a string)");
        return 0;
    }
    jset_str(upd, it->string, v);
    return 1;
}

/* PATCH an alert or an incident: every member validated first, then applied; answers 200
 * with the whole updated object. */
static void
sec_patch(struct mreq *r, int incidents)
{
    struct m_secitem *a;
    cJSON *body, *upd, *it;
    char now[32];

    if (!options_ok(r, "") || (a = find_sec(r, incidents)) == NULL ||
        (body = mreq_body_object(r, 0, "BadRequest")) == NULL) {
        return;
    }
    upd = cJSON_CreateObject();
    cJSON_ArrayForEach(it, body)
    {
        const char *k = it->string;

        if (strcmp(k, "@odata.type") == 0) {
            continue;
        }
        if (strcmp(k, "status") == 0) {
            if (!patch_enum(r, it, incidents ? incident_status : alert_status, upd)) {
                goto out;
            }
        } else if (strcmp(k, "classification") == 0) {
            if (!patch_enum(r, it, classifications, upd)) {
                goto out;
            }
        } else if (strcmp(k, "determination") == 0) {
            if (!patch_enum(r, it, determinations, upd)) {
                goto out;
            }
        } else if (strcmp(k, "assignedTo") == 0 ||
                   (incidents && (strcmp(k, "resolvingComment") == 0 ||
                                  strcmp(k, "description") == 0 || strcmp(k, "summary") == 0))) {
            if (!cJSON_IsString(it) && !cJSON_IsNull(it)) {
                mreq_graph_error(r, 400, "BadRequest", "'%s' must be a string or null.", k);
                goto out;
            }
            jset(upd, k, cJSON_Duplicate(it, 1));
        } else if (incidents && strcmp(k, "customTags") == 0) {
            const cJSON *tag;

            if (!cJSON_IsArray(it)) {
                mreq_graph_error(r, 400, "BadRequest", "customTags must be an array of strings.");
                goto out;
            }
            cJSON_ArrayForEach(tag, it)
            {
                if (!cJSON_IsString(tag)) {
                    mreq_graph_error(r, 400, "BadRequest",
                                     "customTags must be an array of strings.");
                    goto out;
                }
            }
            jset(upd, k, cJSON_Duplicate(it, 1));
        } else {
            mreq_graph_error(r, 400, "BadRequest",
                             "Property '%s' does not exist or cannot be updated on type "
                             "'microsoft.graph.security.%s'.",
                             k, incidents ? "incident" : "alert");
            goto out;
        }
    }
    now_str(now);
    cJSON_ArrayForEach(it, upd)
    {
        jset(a->obj, it->string, cJSON_Duplicate(it, 1));
    }
    if (!incidents && json_get(upd, "status") != NULL) {
        if (strcmp(jstr(upd, "status"), "resolved") == 0) {
            if (jstr(a->obj, "resolvedDateTime") == NULL) {
                jset_str(a->obj, "resolvedDateTime", now);
            }
        } else {
            jset_str(a->obj, "resolvedDateTime", NULL);
        }
    }
    jset_str(a->obj, "lastUpdateDateTime", now);
    a->n_update++;
    mreq_json(r, 200, cJSON_Duplicate(a->obj, 1));
out:
    cJSON_Delete(upd);
    cJSON_Delete(body);
}

static void
alerts_patch(struct mreq *r)
{
    sec_patch(r, 0);
}

static void
incidents_patch(struct mreq *r)
{
    sec_patch(r, 1);
}

/* POST .../comments: appends one comment; answers 200 with every comment. */
static void
sec_comment(struct mreq *r, int incidents)
{
    struct m_secitem *a;
    cJSON *body, *c, *out;
    const char *text, *type;
    char now[32], *ctx;

    if (!options_ok(r, "") || (a = find_sec(r, incidents)) == NULL ||
        (body = mreq_body_object(r, 0, "BadRequest")) == NULL) {
        return;
    }
    text = jstr(body, "comment");
    type = jstr(body, "@odata.type");
    if (text == NULL || text[0] == '\0') {
        mreq_graph_error(r, 400, "BadRequest", "The comment property is required.");
        cJSON_Delete(body);
        return;
    }
    if (type != NULL && strcmp(type, "microsoft.graph.security.alertComment") != 0 &&
        strcmp(type, "#microsoft.graph.security.alertComment") != 0) {
        mreq_graph_error(r, 400, "BadRequest", "Unexpected @odata.type '%s'.", type);
        cJSON_Delete(body);
        return;
    }
    now_str(now);
    c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "comment", text);
    cJSON_AddStringToObject(c, "createdByDisplayName",
                            r->tok != NULL ? r->tok->client->display_name : "Automation");
    cJSON_AddStringToObject(c, "createdDateTime", now);
    cJSON_AddItemToArray(json_get(a->obj, "comments"), c);
    jset_str(a->obj, "lastUpdateDateTime", now);
    a->n_comment++;
    out = cJSON_CreateObject();
    ctx = xasprintf("%s/v1.0/$metadata#Collection(microsoft.graph.security.alertComment)", r->base);
    cJSON_AddStringToObject(out, "@odata.context", ctx);
    free(ctx);
    cJSON_AddItemToObject(out, "value", cJSON_Duplicate(json_get(a->obj, "comments"), 1));
    cJSON_Delete(body);
    mreq_json(r, 200, out);
}

static void
alerts_comment(struct mreq *r)
{
    sec_comment(r, 0);
}

static void
incidents_comment(struct mreq *r)
{
    sec_comment(r, 1);
}

/* ---- the route table ---- */

#define USER_READ "User.Read.All|User.ReadWrite.All|Directory.Read.All|Directory.ReadWrite.All"
#define IDP_READ "IdentityRiskyUser.Read.All|IdentityRiskyUser.ReadWrite.All"
#define ALERT_READ "SecurityAlert.Read.All|SecurityAlert.ReadWrite.All"
#define INCIDENT_READ "SecurityIncident.Read.All|SecurityIncident.ReadWrite.All"

const struct route graph_routes[] = {
    { "GET", "/v1.0/users", SVC_GRAPH, "users.list", users_list, USER_READ, LIM_NONE, LIM_NONE },
    { "GET", "/v1.0/users/*", SVC_GRAPH, "users.get", users_get, USER_READ, LIM_NONE, LIM_NONE },
    { "PATCH", "/v1.0/users/*", SVC_GRAPH, "users.patch", users_patch,
      "User.EnableDisableAccount.All|User.ReadWrite.All|Directory.ReadWrite.All",
      LIM_DIRECTORY_WRITES, LIM_NONE },
    { "POST", "/v1.0/users/*/revokeSignInSessions", SVC_GRAPH, "users.revoke", users_revoke,
      "User.RevokeSessions.All|User.ReadWrite.All|Directory.ReadWrite.All", LIM_DIRECTORY_WRITES,
      LIM_NONE },
    { "GET", "/v1.0/auditLogs/signIns", SVC_GRAPH, "signIns.list", signins_list,
      "AuditLog.Read.All", LIM_SIGNINS, LIM_NONE },
    { "GET", "/v1.0/auditLogs/signIns/*", SVC_GRAPH, "signIns.get", signins_get,
      "AuditLog.Read.All", LIM_SIGNINS, LIM_NONE },
    { "GET", "/v1.0/identityProtection/riskyUsers", SVC_GRAPH, "riskyUsers.list", risky_list,
      IDP_READ, LIM_IDP, LIM_NONE },
    { "POST", "/v1.0/identityProtection/riskyUsers/confirmCompromised", SVC_GRAPH,
      "riskyUsers.confirmCompromised", risky_confirm, "IdentityRiskyUser.ReadWrite.All", LIM_IDP,
      LIM_NONE },
    { "POST", "/v1.0/identityProtection/riskyUsers/dismiss", SVC_GRAPH, "riskyUsers.dismiss",
      risky_dismiss, "IdentityRiskyUser.ReadWrite.All", LIM_IDP, LIM_NONE },
    { "GET", "/v1.0/identityProtection/riskyUsers/*", SVC_GRAPH, "riskyUsers.get", risky_get,
      IDP_READ, LIM_IDP, LIM_NONE },
    { "GET", "/v1.0/identityProtection/riskyUsers/*/history", SVC_GRAPH, "riskyUsers.history",
      risky_history, IDP_READ, LIM_IDP, LIM_NONE },
    { "GET", "/v1.0/identityProtection/riskDetections", SVC_GRAPH, "riskDetections.list",
      detections_list, "IdentityRiskEvent.Read.All|IdentityRiskEvent.ReadWrite.All", LIM_IDP,
      LIM_NONE },
    { "GET", "/v1.0/identityProtection/riskDetections/*", SVC_GRAPH, "riskDetections.get",
      detections_get, "IdentityRiskEvent.Read.All|IdentityRiskEvent.ReadWrite.All", LIM_IDP,
      LIM_NONE },
    { "GET", "/v1.0/security/alerts_v2", SVC_GRAPH, "alerts.list", alerts_list, ALERT_READ,
      LIM_SECURITY, LIM_NONE },
    { "GET", "/v1.0/security/alerts_v2/*", SVC_GRAPH, "alerts.get", alerts_get, ALERT_READ,
      LIM_SECURITY, LIM_NONE },
    { "PATCH", "/v1.0/security/alerts_v2/*", SVC_GRAPH, "alerts.patch", alerts_patch,
      "SecurityAlert.ReadWrite.All", LIM_SECURITY, LIM_NONE },
    { "POST", "/v1.0/security/alerts_v2/*/comments", SVC_GRAPH, "alerts.comment", alerts_comment,
      "SecurityAlert.ReadWrite.All", LIM_SECURITY, LIM_NONE },
    { "GET", "/v1.0/security/incidents", SVC_GRAPH, "incidents.list", incidents_list, INCIDENT_READ,
      LIM_SECURITY, LIM_NONE },
    { "GET", "/v1.0/security/incidents/*", SVC_GRAPH, "incidents.get", incidents_get, INCIDENT_READ,
      LIM_SECURITY, LIM_NONE },
    { "PATCH", "/v1.0/security/incidents/*", SVC_GRAPH, "incidents.patch", incidents_patch,
      "SecurityIncident.ReadWrite.All", LIM_SECURITY, LIM_NONE },
    { "POST", "/v1.0/security/incidents/*/comments", SVC_GRAPH, "incidents.comment",
      incidents_comment, "SecurityIncident.ReadWrite.All", LIM_SECURITY, LIM_NONE },
    { NULL, NULL, SVC_GRAPH, NULL, NULL, NULL, LIM_NONE, LIM_NONE },
};
