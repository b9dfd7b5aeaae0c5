/* norm_entra.c: Microsoft Entra ID sign-in and audit logs, Entra ID Protection risk
 * detections and risky users: diagnostic-setting records ({"category":"SignInLogs",
 * "properties":{...}}) and the same Graph objects sent bare. Rules: docs/sources.md. */
#include "engine/norm_entra.h"

#include <stdio.h>
#include <string.h>

#include "engine/normlib.h"

static const char *const entra_sources[] = { "entra.signin", "entra.audit", "entra.risk",
                                             "entra.riskyuser", NULL };

static const char *const signin_categories[] = { "SignInLogs",
                                                 "NonInteractiveUserSignInLogs",
                                                 "ServicePrincipalSignInLogs",
                                                 "ManagedIdentitySignInLogs",
                                                 "ADFSSignInLogs",
                                                 "MicrosoftServicePrincipalSignInLogs",
                                                 NULL };

/* Error codes of sign-ins that stopped after the password was checked and found right. */
static const int password_known[] = { 50055, 50144, 53000, 53001, 53002, 53003, 53004, 500121, 0 };
/* Interrupts: the password was right and the sign-in waits for a further step. */
static const int mfa_interrupts[] = { 50072, 50074, 50076, 50079, 0 };
/* Not attacks: prompts, expired or revoked sessions. */
static const int benign_codes[] = { 16000, 50058, 50125, 50132,  50133, 50140,
                                    50173, 50199, 70043, 700082, 0 };

static const char *const legacy_clients[] = { "Exchange ActiveSync",
                                              "IMAP4",
                                              "POP3",
                                              "Authenticated SMTP",
                                              "Exchange Web Services",
                                              "MAPI Over HTTP",
                                              "Offline Address Book",
                                              "Other clients",
                                              "AutoDiscover",
                                              NULL };

static int
in_codes(int code, const int *list)
{
    for (; *list != 0; list++) {
        if (*list == code) {
            return 1;
        }
    }
    return 0;
}

/* The activity record itself: "properties" of a diagnostic record, or the Graph object. */
static const cJSON *
body(const cJSON *obj)
{
    const cJSON *p = normlib_obj(obj, "properties");

    return p != NULL ? p : obj;
}

static int
is_diagnostic(const cJSON *obj)
{
    return normlib_get(obj, "properties") != NULL && normlib_str(obj, "category") != NULL;
}

static const char *
entra_detect(const cJSON *obj)
{
    const char *cat = normlib_str(obj, "category");

    if (cat != NULL) {
        if (normlib_in(cat, signin_categories)) {
            return "entra.signin";
        }
        if (normlib_is(cat, "UserRiskEvents") || normlib_is(cat, "ServicePrincipalRiskEvents")) {
            return "entra.risk";
        }
        if (normlib_is(cat, "RiskyUsers") || normlib_is(cat, "RiskyServicePrincipals")) {
            return "entra.riskyuser";
        }
        /* Intune writes AuditLogs too; Entra's carry Graph directoryAudit members. */
        if (normlib_is(cat, "AuditLogs") && (normlib_get(obj, "properties.activityDisplayName") ||
                                             normlib_get(obj, "properties.initiatedBy") ||
                                             normlib_get(obj, "properties.loggedByService"))) {
            return "entra.audit";
        }
    }
    /* Graph objects sent as they are (a directoryAudit has a category of its own). */
    if (normlib_get(obj, "riskEventType") != NULL && normlib_get(obj, "detectedDateTime") != NULL) {
        return "entra.risk";
    }
    if (normlib_get(obj, "riskLastUpdatedDateTime") != NULL &&
        normlib_get(obj, "riskLevel") != NULL) {
        return "entra.riskyuser";
    }
    if (normlib_get(obj, "activityDisplayName") != NULL &&
        normlib_get(obj, "initiatedBy") != NULL) {
        return "entra.audit";
    }
    if (normlib_obj(obj, "status") != NULL && normlib_get(obj, "createdDateTime") != NULL &&
        normlib_get(obj, "userPrincipalName") != NULL &&
        (normlib_get(obj, "appId") != NULL || normlib_get(obj, "appDisplayName") != NULL)) {
        return "entra.signin";
    }
    return NULL;
}

/* A diagnostic record must carry its activity as an object in "properties". */
static int
need_properties(const cJSON *obj, char **errp)
{
    if (is_diagnostic(obj) && normlib_obj(obj, "properties") == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    return 0;
}

/* Did authenticationDetails record a successful primary (password) step? */
static int
primary_step_succeeded(const cJSON *p)
{
    const cJSON *steps = normlib_get(p, "authenticationDetails");
    const cJSON *it;

    if (!cJSON_IsArray(steps)) {
        return 0;
    }
    cJSON_ArrayForEach(it, steps)
    {
        if (normlib_is(normlib_str(it, "authenticationStepRequirement"),
                       "Primary authentication") &&
            normlib_bool(it, "succeeded") == 1) {
            return 1;
        }
    }
    return 0;
}

static int
risk_level(const cJSON *p)
{
    int s = normlib_ms_severity(normlib_str(p, "riskLevelDuringSignIn"));
    int agg = normlib_ms_severity(normlib_str(p, "riskLevelAggregated"));

    s = normlib_sev_max(s, agg);
    if (normlib_is(normlib_str(p, "riskState"), "confirmedCompromised")) {
        s = SEV_CRITICAL;
    }
    return s < 0 ? SEV_INFO : s;
}

static int
signin(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "properties.createdDateTime", "createdDateTime", "time",
                                         NULL };
    const cJSON *p = body(obj);
    const char *user = normlib_str(p, "userPrincipalName");
    const char *app = normlib_str(p, "appDisplayName");
    const char *ca = normlib_str(p, "conditionalAccessStatus");
    const char *factor = normlib_str(p, "authenticationRequirement");
    const char *reason = normlib_str(p, "status.failureReason");
    const char *id = normlib_str(p, "id");
    const char *ip = normlib_str(p, "ipAddress");
    /* Read once: the record's category when it is a diagnostic record, else NULL. */
    const char *diag = p != obj ? normlib_str(obj, "category") : NULL;
    char cabuf[64] = "";
    double d;
    int code, sev, risk;

    if (need_properties(obj, errp) == -1 || normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    if (normlib_num(p, "status.errorCode", &d) == 0 || normlib_num(obj, "resultType", &d) == 0) {
        code = (int)d;
    } else {
        return kg_err(errp, "status.errorCode: required (the sign-in's result)");
    }
    if (user == NULL) {
        user = normlib_str(p, "userId");
    }
    if (user == NULL) {
        user = normlib_str(p, "servicePrincipalName");
    }
    if (id == NULL) {
        id = normlib_str(obj, "correlationId");
    }
    if (id == NULL) {
        return kg_err(errp, "id: required (the sign-in's id)");
    }
    normlib_set_id(a, id);
    normlib_category(a, diag != NULL ? diag : "SignInLogs");
    normlib_vendor_severity(a, normlib_str(p, "riskLevelDuringSignIn"));
    risk = risk_level(p);
    if (ca != NULL) {
        snprintf(cabuf, sizeof(cabuf), "; conditional access %.32s", ca);
    }
    if (code == 0) {
        normlib_outcome(a, "succeeded");
        sev = risk;
        if (normlib_in(normlib_str(p, "clientAppUsed"), legacy_clients)) {
            sev = normlib_sev_max(sev, SEV_LOW); /* legacy protocols bypass MFA */
        }
        normlib_title(a, "Sign-in succeeded: %s to %s (%s%s)", user ? user : "?", app ? app : "?",
                      normlib_is(factor, "multiFactorAuthentication") ? "multi-factor"
                      : factor != NULL                                ? "single factor"
                                                                      : "factor unknown",
                      cabuf);
    } else {
        if (in_codes(code, benign_codes)) {
            normlib_outcome(a, "attempted");
            sev = SEV_INFO;
        } else if (in_codes(code, mfa_interrupts)) {
            normlib_outcome(a, "attempted");
            sev = SEV_MEDIUM;
        } else if (in_codes(code, password_known) || primary_step_succeeded(p)) {
            normlib_outcome(a, "blocked");
            sev = SEV_MEDIUM;
        } else {
            normlib_outcome(a, "blocked");
            sev = SEV_LOW;
        }
        sev = normlib_sev_max(sev, risk);
        normlib_title(a, "Sign-in failed: %s to %s (error %d%s%s%s)", user ? user : "?",
                      app ? app : "?", code, reason ? ": " : "", reason ? reason : "", cabuf);
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    normlib_obs(a, "user", normlib_str(p, "userPrincipalName"), "account");
    normlib_obs(a, "ip", ip != NULL ? ip : normlib_str(obj, "callerIpAddress"), "src");
    normlib_obs(a, "device", normlib_str(p, "deviceDetail.deviceId"), "src");
    normlib_obs(a, "host", normlib_str(p, "deviceDetail.displayName"), "src");
    return 0;
}

/* Audit activities that matter for security, with their level when they succeed. */
struct activity {
    const char *name;
    int sev;
};

static const struct activity audit_levels[] = {
    { "Consent to application", SEV_HIGH },
    { "Add service principal credentials", SEV_HIGH },
    { "Add app role assignment to service principal", SEV_HIGH },
    { "Add delegated permission grant", SEV_HIGH },
    { "Update application - Certificates and secrets management", SEV_HIGH },
    { "Update application \xe2\x80\x93 Certificates and secrets management", SEV_HIGH },
    { "Set federation settings on domain", SEV_HIGH },
    { "Set domain authentication", SEV_HIGH },
    { "Add member to role", SEV_HIGH },
    { "Add eligible member to role", SEV_HIGH },
    { "Update conditional access policy", SEV_MEDIUM },
    { "Delete conditional access policy", SEV_MEDIUM },
    { "User deleted security info", SEV_MEDIUM },
    { "User registered security info", SEV_LOW },
    { "Add owner to application", SEV_MEDIUM },
    { "Add owner to service principal", SEV_MEDIUM },
    { "Disable Strong Authentication", SEV_MEDIUM },
    { NULL, 0 },
};

#define GLOBAL_ADMIN_TEMPLATE "62e90394-69f5-4237-9190-012177145e10"

/* Does any target's modified Role.TemplateId name the Global Administrator role? */
static int
grants_global_admin(const cJSON *targets)
{
    const cJSON *t, *m;

    cJSON_ArrayForEach(t, targets)
    {
        const cJSON *mods = normlib_get(t, "modifiedProperties");

        if (!cJSON_IsArray(mods)) {
            continue;
        }
        cJSON_ArrayForEach(m, mods)
        {
            const char *nv = normlib_str(m, "newValue");

            if (normlib_is(normlib_str(m, "displayName"), "Role.TemplateId") && nv != NULL &&
                strstr(nv, GLOBAL_ADMIN_TEMPLATE) != NULL) {
                return 1;
            }
        }
    }
    return 0;
}

static int
audit(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "properties.activityDateTime", "activityDateTime", "time",
                                         NULL };
    const cJSON *p = body(obj);
    const char *what = normlib_str(p, "activityDisplayName");
    const char *result = normlib_str(p, "result");
    const char *actor = normlib_str(p, "initiatedBy.user.userPrincipalName");
    const char *id = normlib_str(p, "id");
    const cJSON *targets = normlib_get(p, "targetResources");
    const cJSON *t;
    int sev = SEV_INFO;

    if (need_properties(obj, errp) == -1 || normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    if (what == NULL) {
        what = normlib_str(obj, "operationName");
    }
    if (what == NULL) {
        return kg_err(errp, "activityDisplayName: required (what was done)");
    }
    if (actor == NULL) {
        actor = normlib_str(p, "initiatedBy.app.displayName");
    }
    if (id == NULL) {
        id = normlib_str(obj, "correlationId");
    }
    if (id != NULL) {
        normlib_set_id(a, id);
    }
    for (const struct activity *x = audit_levels; x->name != NULL; x++) {
        if (normlib_is(what, x->name)) {
            sev = x->sev;
            break;
        }
    }
    if (cJSON_IsArray(targets) && sev >= SEV_HIGH && grants_global_admin(targets)) {
        sev = SEV_CRITICAL;
    }
    if (normlib_is(result, "success")) {
        normlib_outcome(a, "succeeded");
    } else if (normlib_is(result, "failure")) {
        normlib_outcome(a, "blocked");
        sev = normlib_sev_add(sev, -1);
    } else {
        normlib_outcome(a, "unknown");
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    normlib_category(a, normlib_str(p, "category"));
    normlib_title(a, "%s by %s: %s", what, actor ? actor : "?", result ? result : "unknown");
    normlib_obs(a, "user", normlib_str(p, "initiatedBy.user.userPrincipalName"), "actor");
    normlib_obs(a, "ip", normlib_str(p, "initiatedBy.user.ipAddress"), "src");
    normlib_obs(a, "ip", normlib_str(obj, "callerIpAddress"), "src");
    if (cJSON_IsArray(targets)) {
        cJSON_ArrayForEach(t, targets)
        {
            const char *type = normlib_str(t, "type");

            if (normlib_is(type, "User")) {
                normlib_obs(a, "user", normlib_str(t, "userPrincipalName"), "target");
            } else if (normlib_is(type, "Device")) {
                normlib_obs(a, "device", normlib_str(t, "id"), "target");
                normlib_obs(a, "host", normlib_str(t, "displayName"), "target");
            }
        }
    }
    return 0;
}

/* The level of a risk detection or a risky user: riskState first (closed states are
 * Informational, a confirmed compromise Critical), then riskLevel. */
static int
risk_severity(const cJSON *p)
{
    const char *state = normlib_str(p, "riskState");
    int s;

    if (normlib_is(state, "confirmedCompromised")) {
        return SEV_CRITICAL;
    }
    if (normlib_is(state, "dismissed") || normlib_is(state, "remediated") ||
        normlib_is(state, "confirmedSafe")) {
        return SEV_INFO;
    }
    s = normlib_ms_severity(normlib_str(p, "riskLevel"));
    return s < 0 ? SEV_MEDIUM : s;
}

static int
risk(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "properties.detectedDateTime", "detectedDateTime",
                                         "properties.activityDateTime", "time", NULL };
    const cJSON *p = body(obj);
    const char *type = normlib_str(p, "riskEventType");
    const char *user = normlib_str(p, "userPrincipalName");
    const char *id = normlib_str(p, "id");

    if (need_properties(obj, errp) == -1 || normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    if (type == NULL) {
        type = normlib_str(p, "riskType");
    }
    if (id == NULL) {
        return kg_err(errp, "id: required (the risk detection's id)");
    }
    normlib_set_id(a, id);
    a->severity = risk_severity(p);
    a->cls = ALERT_CLASS_ALERT;
    normlib_outcome(a, "unknown"); /* a signal: success shows in the linked sign-in */
    normlib_category(a, type);
    normlib_vendor_severity(a, normlib_str(p, "riskLevel"));
    normlib_title(a, "Risk detection %s for %s (%s, %s)", type ? type : "?", user ? user : "?",
                  normlib_str(p, "riskLevel") ? normlib_str(p, "riskLevel") : "?",
                  normlib_str(p, "detectionTimingType") ? normlib_str(p, "detectionTimingType")
                                                        : "?");
    normlib_obs(a, "user", user, "account");
    normlib_obs(a, "ip", normlib_str(p, "ipAddress"), "src");
    return 0;
}

static int
risky_user(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "properties.riskLastUpdatedDateTime",
                                         "riskLastUpdatedDateTime", "time", NULL };
    const cJSON *p = body(obj);
    const char *user = normlib_str(p, "userPrincipalName");
    const char *parts[2];

    if (need_properties(obj, errp) == -1 || normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    parts[0] = normlib_str(p, "id");
    parts[1] = normlib_str(p, "riskLastUpdatedDateTime");
    if (parts[0] == NULL) {
        return kg_err(errp, "id: required (the risky user's object id)");
    }
    normlib_set_id_parts(a, parts, 2); /* each change of the user's risk is a record */
    a->severity = risk_severity(p);
    a->cls = ALERT_CLASS_ALERT;
    normlib_outcome(a, "unknown");
    normlib_category(a, "riskyUser");
    normlib_vendor_severity(a, normlib_str(p, "riskLevel"));
    normlib_title(a, "Risky user %s: %s, %s", user ? user : parts[0],
                  normlib_str(p, "riskLevel") ? normlib_str(p, "riskLevel") : "?",
                  normlib_str(p, "riskState") ? normlib_str(p, "riskState") : "?");
    normlib_obs(a, "user", user, "account");
    return 0;
}

static int
entra_normalize(const cJSON *obj, const char *source, struct alert *a, char **errp)
{
    if (strcmp(source, "entra.signin") == 0) {
        return signin(obj, a, errp);
    }
    if (strcmp(source, "entra.audit") == 0) {
        return audit(obj, a, errp);
    }
    if (strcmp(source, "entra.risk") == 0) {
        return risk(obj, a, errp);
    }
    return risky_user(obj, a, errp);
}

const struct norm_family norm_entra_family = {
    "entra",
    entra_sources,
    entra_detect,
    entra_normalize,
};
