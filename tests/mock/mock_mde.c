/* mock_mde.c: Microsoft Defender for Endpoint in the mock (reference section 5): machines
 * by id, name, $filter and findbyip; machine actions with their Pending -> InProgress ->
 * final life cycle driven by polls, duplicate detection and cancel; indicators. */
#include "tests/mock/mock.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/json.h"

enum {
    ACT_ISOLATE,
    ACT_UNISOLATE,
    ACT_SCAN,
    ACT_RESTRICT,
    ACT_UNRESTRICT,
    ACT_COLLECT,
    ACT_QUARANTINE,
    ACT_OFFBOARD,
};

/* One machine action kind: URL suffix, type name, permission, the body parameter beyond
 * Comment (NULL: none) and its allowed values. */
static const struct action_kind {
    const char *suffix;
    const char *type;
    const char *perm;
    const char *param;
    const char *const values[4];
    const char *title;
} kinds[MDE_ACTION_TYPES] = {
    [ACT_ISOLATE] = { "isolate",
                      "Isolate",
                      "Machine.Isolate",
                      "IsolationType",
                      { "Full", "Selective", "UnManagedDevice", NULL },
                      "Isolate machine" },
    [ACT_UNISOLATE] = { "unisolate",
                        "Unisolate",
                        "Machine.Isolate",
                        NULL,
                        { NULL },
                        "Release machine from isolation" },
    [ACT_SCAN] = { "runAntiVirusScan",
                   "RunAntiVirusScan",
                   "Machine.Scan",
                   "ScanType",
                   { "Quick", "Full", NULL },
                   "Run antivirus scan" },
    [ACT_RESTRICT] = { "restrictCodeExecution",
                       "RestrictCodeExecution",
                       "Machine.RestrictExecution",
                       NULL,
                       { NULL },
                       "Restrict app execution" },
    [ACT_UNRESTRICT] = { "unrestrictCodeExecution",
                         "UnrestrictCodeExecution",
                         "Machine.RestrictExecution",
                         NULL,
                         { NULL },
                         "Remove app execution restriction" },
    [ACT_COLLECT] = { "collectInvestigationPackage",
                      "CollectInvestigationPackage",
                      "Machine.CollectForensics",
                      NULL,
                      { NULL },
                      "Collect investigation package" },
    [ACT_QUARANTINE] = { "StopAndQuarantineFile",
                         "StopAndQuarantineFile",
                         "Machine.StopAndQuarantine",
                         "Sha1",
                         { NULL },
                         "Stop and quarantine file" },
    [ACT_OFFBOARD] = { "offboard",
                       "Offboard",
                       "Machine.Offboard",
                       NULL,
                       { NULL },
                       "Offboard machine" },
};

const char *
mde_action_type_name(int type)
{
    return type >= 0 && type < MDE_ACTION_TYPES ? kinds[type].type : "?";
}

int
mde_action_type(const char *name)
{
    for (int i = 0; name != NULL && i < MDE_ACTION_TYPES; i++) {
        if (strcmp(kinds[i].type, name) == 0) {
            return i;
        }
    }
    return -1;
}

static int
is_final(const char *status)
{
    return strcmp(status, "Pending") != 0 && strcmp(status, "InProgress") != 0;
}

static int
is_hex(const char *s, size_t n)
{
    if (strlen(s) != n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i])) {
            return 0;
        }
    }
    return 1;
}

/* The machine's state once action a has reached its final status. */
void
mde_apply_final(struct m_action *a)
{
    struct m_machine *m = a->m;

    a->final_applied = 1;
    if (strcmp(jstr(a->obj, "status"), "Succeeded") != 0) {
        return;
    }
    m->n_completed++;
    switch (a->type) {
    case ACT_ISOLATE:
        m->isolated = 1;
        break;
    case ACT_UNISOLATE:
        m->isolated = 0;
        break;
    case ACT_RESTRICT:
        m->restricted = 1;
        break;
    case ACT_UNRESTRICT:
        m->restricted = 0;
        break;
    case ACT_OFFBOARD:
        m->offboarded = 1;
        jset_str(m->obj, "onboardingStatus", "Offboarded");
        break;
    default:
        break;
    }
}

cJSON *
mde_render_action(struct m_action *a)
{
    return cJSON_Duplicate(a->obj, 1);
}

static void
set_status(struct m_action *a, const char *status)
{
    char now[32];

    mock_fmt_now(now);
    jset_str(a->obj, "status", status);
    jset_str(a->obj, "lastUpdateDateTimeUtc", now);
}

/* One poll of GET /machineactions/{id}: polls 1..N-1 show InProgress, poll N and later
 * the final status (N = poll_steps); an offline machine's actions stay Pending. */
static void
advance(struct m_action *a)
{
    const char *st = jstr(a->obj, "status");

    if (is_final(st) || a->m->offline) {
        return;
    }
    a->polls++;
    if (a->polls >= mock.cfg.poll_steps) {
        set_status(a, a->final_status);
        mde_apply_final(a);
    } else if (strcmp(st, "InProgress") != 0) {
        set_status(a, "InProgress");
    }
}

/* ---- machines ---- */

static cJSON *
render_machine(void *item, struct mreq *r, void *ctx)
{
    struct m_machine *m = item;

    (void)r;
    (void)ctx;
    return cJSON_Duplicate(m->obj, 1);
}

static cJSON *
render_action(void *item, struct mreq *r, void *ctx)
{
    (void)r;
    (void)ctx;
    return mde_render_action(item);
}

static const struct fprop machine_filter[] = {
    { "computerDnsName", FT_STR, OP_EQ | OP_SW },
    { "lastIpAddress", FT_STR, OP_EQ },
    { "lastExternalIpAddress", FT_STR, OP_EQ },
    { "aadDeviceId", FT_STR, OP_EQ },
    { "id", FT_STR, OP_EQ },
    { "healthStatus", FT_STR, OP_EQ | OP_NE },
    { "osPlatform", FT_STR, OP_EQ },
    { "riskScore", FT_STR, OP_EQ },
    { "exposureLevel", FT_STR, OP_EQ },
    { "onboardingStatus", FT_STR, OP_EQ },
    { "rbacGroupId", FT_NUM, OP_EQ },
    { "lastSeen", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { NULL, 0, 0 },
};

static int
mde_filter(struct mreq *r, const struct fprop *props, struct filter *f)
{
    const char *text = mhttp_param(r->h, "$filter");
    char *err = NULL;

    memset(f, 0, sizeof(*f));
    if (text != NULL && filter_parse(text, props, f, &err) == -1) {
        mreq_mde_error(r, 400, "ODataError", "Invalid filter clause: %s", err);
        free(err);
        return 0;
    }
    return 1;
}

static void
machines_list(struct mreq *r)
{
    struct filter f;
    struct mvec hits = { 0 };

    if (!mde_filter(r, machine_filter, &f)) {
        return;
    }
    for (size_t i = 0; i < mock.machines.n; i++) {
        struct m_machine *m = mock.machines.v[i];

        if (filter_match(&f, m->obj)) {
            mvec_push(&hits, m);
        }
    }
    mock_list_mde(r, hits.v, hits.n, "Machines", render_machine, NULL);
    mvec_free(&hits);
    filter_free(&f);
}

/* Was machine m seen with ip around t (+-15 min)? Its last IP over [firstSeen, lastSeen],
 * and the seeded _ip_history ranges. */
static int
seen_with(const struct m_machine *m, const char *ip, int64_t t)
{
    const int64_t slack = 15 * 60000;
    const cJSON *h;
    const char *last = jstr(m->obj, "lastIpAddress");

    if (last != NULL && strcmp(last, ip) == 0) {
        int64_t from = mock_parse_time_or(jstr(m->obj, "firstSeen"), 0);
        int64_t to = mock_parse_time_or(jstr(m->obj, "lastSeen"), 0);

        if (t >= from - slack && t <= to + slack) {
            return 1;
        }
    }
    cJSON_ArrayForEach(h, m->ip_history)
    {
        const char *hip = jstr(h, "ip");
        int64_t from = mock_parse_time_or(jstr(h, "from"), 0);
        int64_t to = mock_parse_time_or(jstr(h, "to"), 0);

        if (hip != NULL && strcmp(hip, ip) == 0 && t >= from - slack && t <= to + slack) {
            return 1;
        }
    }
    return 0;
}

/* GET /api/machines/findbyip(ip='192.0.2.41',timestamp=2025-06-01T02:00:00Z) */
static void
machines_findbyip(struct mreq *r, const char *seg)
{
    char ip[64], ts[64];
    int used = 0;
    int64_t t;
    unsigned char bin[16];
    struct mvec hits = { 0 };

    if (sscanf(seg, "findbyip(ip='%63[^']',timestamp=%63[^)])%n", ip, ts, &used) != 2 ||
        seg[used] != '\0') {
        mreq_mde_error(r, 400, "InvalidInput",
                       "Expected findbyip(ip='<address>',timestamp=<UTC time>).");
        return;
    }
    if (inet_pton(AF_INET, ip, bin) != 1 && inet_pton(AF_INET6, ip, bin) != 1) {
        mreq_mde_error(r, 400, "InvalidIpAddress", "'%s' is not a valid IP address.", ip);
        return;
    }
    if (util_parse_time(ts, &t) == -1) {
        mreq_mde_error(r, 400, "InvalidInput", "'%s' is not a valid timestamp.", ts);
        return;
    }
    if (mock_now() - t > 30LL * 86400000) {
        mreq_mde_error(r, 400, "InvalidInput", "The timestamp must be within the last 30 days.");
        return;
    }
    for (size_t i = 0; i < mock.machines.n; i++) {
        struct m_machine *m = mock.machines.v[i];

        if (seen_with(m, ip, t)) {
            mvec_push(&hits, m);
        }
    }
    mock_list_mde(r, hits.v, hits.n, "Machines", render_machine, NULL);
    mvec_free(&hits);
}

static struct m_machine *
find_machine(struct mreq *r, int by_name)
{
    struct m_machine *m = mock_machine(r->cap[0]);

    if (m != NULL && !by_name && strcasecmp(jstr(m->obj, "id"), r->cap[0]) != 0) {
        m = NULL; /* actions take the machine id only */
    }
    if (m == NULL) {
        mreq_mde_error(r, 404, "ResourceNotFound", "Machine %s was not found.", r->cap[0]);
    }
    return m;
}

static void
machines_get(struct mreq *r)
{
    struct m_machine *m;

    if (strncasecmp(r->cap[0], "findbyip(", 9) == 0) {
        machines_findbyip(r, r->cap[0]);
        return;
    }
    if ((m = find_machine(r, 1)) == NULL) {
        return;
    }
    mreq_json(r, 200, cJSON_Duplicate(m->obj, 1));
}

/* ---- actions ---- */

static int
os_supports(const struct m_machine *m, int type, const char *scope)
{
    const char *os = jstr(m->obj, "osPlatform");
    static const char *const legacy[] = { "Windows7",     "Windows8",
                                          "Windows8Blue", "WindowsServer2008R2",
                                          "WindowsXP",    NULL };

    if (os == NULL) {
        return 1;
    }
    for (size_t i = 0; legacy[i] != NULL; i++) {
        if (strcasecmp(os, legacy[i]) == 0) {
            return 0;
        }
    }
    if (strcasecmp(os, "Linux") == 0 || strcasecmp(os, "macOS") == 0) {
        if (type == ACT_RESTRICT || type == ACT_UNRESTRICT || type == ACT_OFFBOARD ||
            (type == ACT_ISOLATE && scope != NULL && strcmp(scope, "Selective") == 0)) {
            return 0;
        }
    }
    return 1;
}

static struct m_action *
pending_of(const struct m_machine *m, int type)
{
    for (size_t i = 0; i < mock.actions.n; i++) {
        struct m_action *a = mock.actions.v[i];

        if (a->m == m && a->type == type && !is_final(jstr(a->obj, "status"))) {
            return a;
        }
    }
    return NULL;
}

/* POST /api/machines/{id}/<action>: body names are case-sensitive; 201 + the action
 * (Pending); a non-final action of the same type on the same machine -> 400
 * ActiveRequestAlreadyExists, or (duplicate_action = return_pending) that action. */
static void
machines_action(struct mreq *r)
{
    const struct action_kind *k = NULL;
    int type = -1;
    struct m_machine *m;
    struct m_action *a;
    cJSON *body, *o, *it;
    const char *comment, *pval = NULL;
    char id[37], now[32];

    for (int i = 0; i < MDE_ACTION_TYPES; i++) {
        if (strcasecmp(kinds[i].suffix, r->cap[1]) == 0) {
            k = &kinds[i];
            type = i;
        }
    }
    if (k == NULL) {
        mreq_mde_error(r, 404, "ResourceNotFound", "Unknown machine action '%s'.", r->cap[1]);
        return;
    }
    if (!mreq_perm(r, k->perm) || (m = find_machine(r, 0)) == NULL) {
        return;
    }
    body = mreq_body_object(r, 1, "InvalidRequestBody");
    if (body == NULL) {
        return;
    }
    comment = jstr(body, "Comment");
    if (json_get(body, "Comment") == NULL) {
        mreq_mde_error(r, 400, "MissingRequiredParameter",
                       "Comment is required (body parameter names are case-sensitive).");
        goto out;
    }
    if (comment == NULL) {
        mreq_mde_error(r, 400, "InvalidInput", "Comment must be a string.");
        goto out;
    }
    if (k->param != NULL) {
        if (json_get(body, k->param) == NULL) {
            mreq_mde_error(r, 400, "MissingRequiredParameter",
                           "%s is required (body parameter names are case-sensitive).", k->param);
            goto out;
        }
        pval = jstr(body, k->param);
        if (type == ACT_QUARANTINE) {
            if (pval == NULL || !is_hex(pval, 40)) {
                mreq_mde_error(r, 400, "InvalidHashValue", "Sha1 must be 40 hexadecimal digits.");
                goto out;
            }
        } else {
            int ok = 0;

            for (size_t i = 0; pval != NULL && k->values[i] != NULL; i++) {
                ok |= strcmp(pval, k->values[i]) == 0;
            }
            if (!ok) {
                mreq_mde_error(r, 400, "InvalidInput", "Invalid value for %s: '%s'.", k->param,
                               pval != NULL ? pval : "(not a string)");
                goto out;
            }
        }
    }
    cJSON_ArrayForEach(it, body)
    {
        if (strcmp(it->string, "Comment") != 0 &&
            (k->param == NULL || strcmp(it->string, k->param) != 0) &&
            (strcasecmp(it->string, "Comment") == 0 ||
             (k->param != NULL && strcasecmp(it->string, k->param) == 0))) {
            mreq_mde_error(r, 400, "InvalidInput",
                           "Unexpected parameter '%s' (parameter names are case-sensitive).",
                           it->string);
            goto out;
        }
    }
    if (!os_supports(m, type, pval)) {
        mreq_mde_error(r, 400, "OsPlatformNotSupported",
                       "%s is not supported for the OS platform %s of machine %s.", k->type,
                       jstr(m->obj, "osPlatform"), jstr(m->obj, "id"));
        goto out;
    }
    a = pending_of(m, type);
    if (a != NULL) {
        m->n_rejected++;
        if (mock.cfg.duplicate_pending) {
            mreq_json(r, 201, mde_render_action(a));
        } else {
            mreq_mde_error(r, 400, "ActiveRequestAlreadyExists", "Action is already in progress");
        }
        goto out;
    }
    a = xcalloc(1, sizeof(*a));
    a->m = m;
    a->type = type;
    {
        const cJSON *res = m->action_results;
        const char *fin = jstr(res, k->type);

        if (fin == NULL) {
            fin = jstr(res, "*");
        }
        snprintf(a->final_status, sizeof(a->final_status), "%s",
                 fin != NULL ? fin : mock.cfg.action_final);
    }
    mock_seq_uuid(0x7f0c9a5eu, mock.next_action++, id);
    mock_fmt_now(now);
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", id);
    cJSON_AddStringToObject(o, "type", k->type);
    cJSON_AddStringToObject(o, "title", k->title);
    if ((type == ACT_ISOLATE || type == ACT_SCAN) && pval != NULL) {
        cJSON_AddStringToObject(o, "scope", pval);
    } else {
        cJSON_AddNullToObject(o, "scope");
    }
    cJSON_AddStringToObject(o, "requestor", r->tok != NULL ? r->tok->client->client_id : "");
    cJSON_AddStringToObject(o, "requestorComment", comment);
    cJSON_AddStringToObject(o, "status", "Pending");
    cJSON_AddStringToObject(o, "machineId", jstr(m->obj, "id"));
    cJSON_AddStringToObject(o, "computerDnsName", jstr(m->obj, "computerDnsName"));
    cJSON_AddStringToObject(o, "creationDateTimeUtc", now);
    cJSON_AddStringToObject(o, "lastUpdateDateTimeUtc", now);
    cJSON_AddNullToObject(o, "cancellationRequestor");
    cJSON_AddNullToObject(o, "cancellationComment");
    cJSON_AddNullToObject(o, "cancellationDateTimeUtc");
    cJSON_AddNumberToObject(o, "errorHResult", 0);
    cJSON_AddStringToObject(o, "requestSource", "PublicApi");
    cJSON_AddNullToObject(o, "externalId");
    if (type == ACT_QUARANTINE) {
        cJSON *fi = cJSON_AddObjectToObject(o, "relatedFileInfo");

        cJSON_AddStringToObject(fi, "fileIdentifier", pval);
        cJSON_AddStringToObject(fi, "fileIdentifierType", "Sha1");
    } else {
        cJSON_AddNullToObject(o, "relatedFileInfo");
    }
    cJSON_AddItemToObject(o, "commands", cJSON_CreateArray());
    cJSON_AddNullToObject(o, "troubleshootInfo");
    a->obj = o;
    /* newest first */
    mvec_push(&mock.actions, NULL);
    memmove(&mock.actions.v[1], &mock.actions.v[0], (mock.actions.n - 1) * sizeof(void *));
    mock.actions.v[0] = a;
    mmap_put(&mock.action_map, id, a);
    m->n_action[type]++;
    mreq_json(r, 201, mde_render_action(a));
out:
    cJSON_Delete(body);
}

static struct m_action *
find_action(struct mreq *r)
{
    struct m_action *a = mmap_get(&mock.action_map, r->cap[0]);

    if (a == NULL) {
        mreq_mde_error(r, 404, "ResourceNotFound", "Machine action %s was not found.", r->cap[0]);
    }
    return a;
}

static void
actions_get(struct mreq *r)
{
    struct m_action *a = find_action(r);

    if (a == NULL) {
        return;
    }
    advance(a);
    mreq_json(r, 200, mde_render_action(a));
}

static const struct fprop action_filter[] = {
    { "machineId", FT_STR, OP_EQ },
    { "type", FT_STR, OP_EQ },
    { "status", FT_STR, OP_EQ | OP_NE },
    { "id", FT_STR, OP_EQ },
    { "requestor", FT_STR, OP_EQ },
    { "creationDateTimeUtc", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { "lastUpdateDateTimeUtc", FT_DATE, OP_GT | OP_GE | OP_LT | OP_LE },
    { NULL, 0, 0 },
};

static void
actions_list(struct mreq *r)
{
    struct filter f;
    struct mvec hits = { 0 };

    if (!mde_filter(r, action_filter, &f)) {
        return;
    }
    for (size_t i = 0; i < mock.actions.n; i++) {
        struct m_action *a = mock.actions.v[i];

        if (filter_match(&f, a->obj)) {
            mvec_push(&hits, a);
        }
    }
    mock_list_mde(r, hits.v, hits.n, "MachineActions", render_action, NULL);
    mvec_free(&hits);
    filter_free(&f);
}

static void
actions_cancel(struct mreq *r)
{
    struct m_action *a;
    cJSON *body;
    const char *comment;
    char now[32];

    if ((a = find_action(r)) == NULL ||
        (body = mreq_body_object(r, 1, "InvalidRequestBody")) == NULL) {
        return;
    }
    comment = jstr(body, "Comment");
    if (comment == NULL) {
        mreq_mde_error(r, 400, "MissingRequiredParameter",
                       "Comment is required (body parameter names are case-sensitive).");
    } else if (is_final(jstr(a->obj, "status"))) {
        mreq_mde_error(r, 400, "BadRequest", "Action %s is already in a final state (%s).",
                       jstr(a->obj, "id"), jstr(a->obj, "status"));
    } else {
        mock_fmt_now(now);
        set_status(a, "Cancelled");
        jset_str(a->obj, "cancellationRequestor", r->tok != NULL ? r->tok->client->client_id : "");
        jset_str(a->obj, "cancellationComment", comment);
        jset_str(a->obj, "cancellationDateTimeUtc", now);
        a->final_applied = 1;
        mreq_json(r, 200, mde_render_action(a));
    }
    cJSON_Delete(body);
}

/* ---- indicators ---- */

static const char *const ind_types[] = { "FileSha1",  "FileSha256",
                                         "FileMd5",   "CertificateThumbprint",
                                         "IpAddress", "DomainName",
                                         "Url",       NULL };
static const char *const ind_actions[] = {
    "Alert", "Warn", "Block", "Audit", "BlockAndRemediate", "AlertAndBlock", "Allowed", NULL
};
static const char *const ind_severities[] = { "Informational", "Low", "Medium", "High", NULL };

static int
one_of(const char *const *list, const char *s)
{
    for (; s != NULL && *list != NULL; list++) {
        if (strcmp(*list, s) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Check indicatorValue for its type; NULL when fine, else the error code. */
static const char *
check_value(const char *type, const char *v)
{
    unsigned char bin[16];

    if (strcmp(type, "FileSha1") == 0 || strcmp(type, "CertificateThumbprint") == 0) {
        return is_hex(v, 40) ? NULL : "InvalidHashValue";
    }
    if (strcmp(type, "FileSha256") == 0) {
        return is_hex(v, 64) ? NULL : "InvalidHashValue";
    }
    if (strcmp(type, "FileMd5") == 0) {
        return is_hex(v, 32) ? NULL : "InvalidHashValue";
    }
    if (strcmp(type, "IpAddress") == 0) {
        return inet_pton(AF_INET, v, bin) == 1 || inet_pton(AF_INET6, v, bin) == 1
                   ? NULL
                   : "InvalidIpAddress";
    }
    if (strcmp(type, "DomainName") == 0) {
        return v[0] != '\0' && strpbrk(v, "/: ") == NULL && strchr(v, '.') != NULL
                   ? NULL
                   : "InvalidDomainName";
    }
    if (strcmp(type, "Url") == 0) {
        return v[0] != '\0' && strchr(v, ' ') == NULL ? NULL : "InvalidUrl";
    }
    return "InvalidInput";
}

/* POST /api/indicators: submit or update (same value and type) -> 200 + the indicator. */
static void
indicators_post(struct mreq *r)
{
    static const char *const required[] = { "indicatorValue", "indicatorType", "action",
                                            "title",          "description",   NULL };
    static const char *const optional[] = { "severity",           "expirationTime",
                                            "recommendedActions", "rbacGroupNames",
                                            "application",        "educateUrl",
                                            "generateAlert",      NULL };
    cJSON *body, *it, *o;
    struct m_indicator *ind;
    const char *value, *type, *action, *sev, *exp, *code;
    char key[600], now[32], id[32];
    int64_t ms;

    if ((body = mreq_body_object(r, 0, "InvalidRequestBody")) == NULL) {
        return;
    }
    for (size_t i = 0; required[i] != NULL; i++) {
        if (jstr(body, required[i]) == NULL) {
            mreq_mde_error(r, 400, "MissingRequiredParameter",
                           "%s is required (parameter names are case-sensitive).", required[i]);
            goto out;
        }
    }
    cJSON_ArrayForEach(it, body)
    {
        if (!one_of(required, it->string) && !one_of(optional, it->string)) {
            mreq_mde_error(r, 400, "InvalidInput", "Unknown parameter '%s'.", it->string);
            goto out;
        }
    }
    value = jstr(body, "indicatorValue");
    type = jstr(body, "indicatorType");
    action = jstr(body, "action");
    sev = jstr(body, "severity");
    exp = jstr(body, "expirationTime");
    if (!one_of(ind_types, type)) {
        mreq_mde_error(r, 400, "InvalidInput", "Invalid indicatorType '%s'.", type);
        goto out;
    }
    if (!one_of(ind_actions, action)) {
        mreq_mde_error(r, 400, "InvalidInput", "Invalid action '%s'.", action);
        goto out;
    }
    if (json_get(body, "severity") != NULL && !one_of(ind_severities, sev)) {
        mreq_mde_error(r, 400, "InvalidInput", "Invalid severity.");
        goto out;
    }
    if (json_get(body, "generateAlert") != NULL && !cJSON_IsBool(json_get(body, "generateAlert"))) {
        mreq_mde_error(r, 400, "InvalidInput", "generateAlert must be a boolean.");
        goto out;
    }
    if (strcmp(action, "Audit") == 0 && !cJSON_IsTrue(json_get(body, "generateAlert"))) {
        mreq_mde_error(r, 400, "InvalidInput", "The Audit action requires generateAlert: true.");
        goto out;
    }
    if (json_get(body, "expirationTime") != NULL &&
        !cJSON_IsNull(json_get(body, "expirationTime")) &&
        (exp == NULL || util_parse_time(exp, &ms) == -1)) {
        mreq_mde_error(r, 400, "InvalidInput", "expirationTime is not a valid UTC time.");
        goto out;
    }
    if ((code = check_value(type, value)) != NULL) {
        mreq_mde_error(r, 400, code, "'%s' is not a valid %s indicator value%s.", value, type,
                       strchr(value, '/') != NULL && strcmp(type, "IpAddress") == 0
                           ? " (CIDR ranges are not supported)"
                           : "");
        goto out;
    }
    snprintf(key, sizeof(key), "%s|%s", type, value);
    mock_fmt_now(now);
    ind = mmap_get(&mock.indicator_key, key);
    if (ind == NULL) {
        if (mock.indicators.n >= (size_t)mock.cfg.indicator_cap) {
            mreq_mde_error(r, 400, "InvalidInput",
                           "The maximum number of active indicators (%d) has been reached.",
                           mock.cfg.indicator_cap);
            goto out;
        }
        ind = xcalloc(1, sizeof(*ind));
        ind->key = xstrdup(key);
        snprintf(id, sizeof(id), "%llu", (unsigned long long)mock.next_indicator++);
        o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", id);
        cJSON_AddStringToObject(o, "creationTimeDateTimeUtc", now);
        cJSON_AddStringToObject(o, "createdBy", r->tok != NULL ? r->tok->client->client_id : "");
        cJSON_AddStringToObject(o, "createdByDisplayName",
                                r->tok != NULL ? r->tok->client->display_name : "");
        cJSON_AddStringToObject(o, "createdBySource", "PublicApi");
        cJSON_AddStringToObject(o, "sourceType", "AadApp");
        ind->obj = o;
        mvec_push(&mock.indicators, ind);
        mmap_put(&mock.indicator_map, id, ind);
        mmap_put(&mock.indicator_key, key, ind);
        mock.ind_added++;
    } else {
        mock.ind_updated++;
    }
    cJSON_ArrayForEach(it, body)
    {
        jset(ind->obj, it->string, cJSON_Duplicate(it, 1));
    }
    jset_str(ind->obj, "lastUpdateTime", now);
    jset_str(ind->obj, "lastUpdatedBy", r->tok != NULL ? r->tok->client->client_id : "");
    mreq_json(r, 200, cJSON_Duplicate(ind->obj, 1));
out:
    cJSON_Delete(body);
}

static const struct fprop indicator_filter[] = {
    { "indicatorValue", FT_STR, OP_EQ },
    { "indicatorType", FT_STR, OP_EQ },
    { "action", FT_STR, OP_EQ },
    { "id", FT_STR, OP_EQ },
    { "createdBy", FT_STR, OP_EQ },
    { "severity", FT_STR, OP_EQ },
    { NULL, 0, 0 },
};

static cJSON *
render_indicator(void *item, struct mreq *r, void *ctx)
{
    struct m_indicator *ind = item;

    (void)r;
    (void)ctx;
    return cJSON_Duplicate(ind->obj, 1);
}

static void
indicators_list(struct mreq *r)
{
    struct filter f;
    struct mvec hits = { 0 };

    if (!mde_filter(r, indicator_filter, &f)) {
        return;
    }
    for (size_t i = 0; i < mock.indicators.n; i++) {
        struct m_indicator *ind = mock.indicators.v[i];

        if (filter_match(&f, ind->obj)) {
            mvec_push(&hits, ind);
        }
    }
    mock_list_mde(r, hits.v, hits.n, "Indicators", render_indicator, NULL);
    mvec_free(&hits);
    filter_free(&f);
}

static void
indicators_get(struct mreq *r)
{
    struct m_indicator *ind = mmap_get(&mock.indicator_map, r->cap[0]);

    if (ind == NULL) {
        mreq_mde_error(r, 404, "ResourceNotFound", "Indicator %s was not found.", r->cap[0]);
        return;
    }
    mreq_json(r, 200, cJSON_Duplicate(ind->obj, 1));
}

static void
indicators_delete(struct mreq *r)
{
    struct m_indicator *ind = mmap_get(&mock.indicator_map, r->cap[0]);

    if (ind == NULL) {
        mreq_mde_error(r, 404, "ResourceNotFound", "Indicator %s was not found.", r->cap[0]);
        return;
    }
    mmap_del(&mock.indicator_map, jstr(ind->obj, "id"));
    mmap_del(&mock.indicator_key, ind->key);
    mvec_remove(&mock.indicators, ind);
    cJSON_Delete(ind->obj);
    free(ind->key);
    free(ind);
    mock.ind_removed++;
    mreq_empty(r, 204);
}

#define MACHINE_READ "Machine.Read.All|Machine.ReadWrite.All"
#define TI_WRITE "Ti.ReadWrite|Ti.ReadWrite.All"

const struct route mde_routes[] = {
    { "GET", "/api/machines", SVC_MDE, "machines.list", machines_list, MACHINE_READ,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "GET", "/api/machines/*", SVC_MDE, "machines.get", machines_get, MACHINE_READ,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "POST", "/api/machines/*/*", SVC_MDE, "machines.action", machines_action, NULL,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "GET", "/api/machineactions", SVC_MDE, "machineactions.list", actions_list, MACHINE_READ,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "GET", "/api/machineactions/*", SVC_MDE, "machineactions.get", actions_get, MACHINE_READ,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "POST", "/api/machineactions/*/cancel", SVC_MDE, "machineactions.cancel", actions_cancel,
      NULL, LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "POST", "/api/indicators", SVC_MDE, "indicators.post", indicators_post, TI_WRITE,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "GET", "/api/indicators", SVC_MDE, "indicators.list", indicators_list,
      TI_WRITE "|Ti.Read.All", LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "GET", "/api/indicators/*", SVC_MDE, "indicators.get", indicators_get,
      TI_WRITE "|Ti.Read.All", LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { "DELETE", "/api/indicators/*", SVC_MDE, "indicators.delete", indicators_delete, TI_WRITE,
      LIM_DEFENDER_MIN, LIM_DEFENDER_HOUR },
    { NULL, NULL, SVC_MDE, NULL, NULL, NULL, LIM_NONE, LIM_NONE },
};
