/* norm_intune.c: Microsoft Intune audit logs and device compliance: diagnostic-setting
 * records (categories AuditLogs with Intune's members, DeviceComplianceOrg, Devices)
 * and Graph managedDevice objects. Rules: docs/sources.md. */
#include "engine/norm_intune.h"

#include <stdio.h>
#include <string.h>

#include "engine/normlib.h"

static const char *const intune_sources[] = { "intune.audit", "intune.device", NULL };

static const char *
intune_detect(const cJSON *obj)
{
    const char *cat = normlib_str(obj, "category");

    if (cat != NULL) {
        if (normlib_is(cat, "DeviceComplianceOrg") || normlib_is(cat, "Devices")) {
            return "intune.device";
        }
        if (normlib_is(cat, "AuditLogs") && (normlib_get(obj, "properties.AuditEventId") != NULL ||
                                             normlib_get(obj, "properties.Actor") != NULL)) {
            return "intune.audit";
        }
        return NULL;
    }
    if (normlib_get(obj, "complianceState") != NULL && normlib_get(obj, "deviceName") != NULL) {
        return "intune.device"; /* Graph managedDevice */
    }
    return NULL;
}

/* The level of a successful audit activity: deleting a compliance or configuration
 * policy weakens every device it covered. */
static int
audit_level(const char *op)
{
    if (op == NULL) {
        return SEV_INFO;
    }
    if (normlib_starts(op, "Delete ") &&
        (strstr(op, "Policy") != NULL || strstr(op, "Configuration") != NULL)) {
        return SEV_MEDIUM;
    }
    if ((normlib_starts(op, "Patch ") || normlib_starts(op, "Assign")) &&
        strstr(op, "CompliancePolicy") != NULL) {
        return SEV_LOW;
    }
    return SEV_INFO;
}

static int
audit(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "properties.ActivityDate", "time", NULL };
    const cJSON *p = normlib_obj(obj, "properties");
    const char *op = normlib_str(obj, "operationName");
    const char *result = normlib_str(obj, "resultType");
    const char *actor = normlib_str(p, "Actor.UPN");
    const char *id = normlib_str(p, "AuditEventId");
    const cJSON *names = normlib_get(p, "TargetDisplayNames");
    const cJSON *it;
    int sev = audit_level(op);

    if (p == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    if (op == NULL) {
        return kg_err(errp, "operationName: required (what was done)");
    }
    if (actor == NULL) {
        actor = normlib_str(obj, "identity");
    }
    if (id == NULL) {
        id = normlib_str(obj, "correlationId");
    }
    if (id != NULL) {
        normlib_set_id(a, id);
    }
    if (normlib_is(result, "Success")) {
        normlib_outcome(a, "succeeded");
    } else if (normlib_is(result, "Failure")) {
        normlib_outcome(a, "blocked");
        sev = normlib_sev_add(sev, -1);
    } else {
        normlib_outcome(a, "unknown");
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    normlib_category(a, "intune-audit");
    normlib_title(a, "%s by %s: %s", op, actor ? actor : "?", result ? result : "unknown");
    normlib_obs(a, "user", actor != NULL && strchr(actor, '@') != NULL ? actor : NULL, "actor");
    if (cJSON_IsArray(names) && strstr(op, "ManagedDevice") != NULL) {
        cJSON_ArrayForEach(it, names)
        {
            normlib_obs(a, "host", cJSON_IsString(it) ? it->valuestring : NULL, "target");
        }
    }
    return 0;
}

/* First non-empty string among members of p (diagnostic and Graph spellings). */
static const char *
pick(const cJSON *p, const char *k1, const char *k2)
{
    const char *s = normlib_str(p, k1);

    return s != NULL ? s : normlib_str(p, k2);
}

static int
device(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "time", "lastSyncDateTime", NULL };
    const cJSON *p = normlib_obj(obj, "properties");
    const char *state, *threat, *name, *parts[4];
    char when[40];
    int sev, t;

    if (normlib_str(obj, "category") != NULL && p == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    if (p == NULL) {
        p = obj;
    }
    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    state = pick(p, "ComplianceState", "complianceState");
    threat = pick(p, "DeviceHealthThreatLevel", "partnerReportedThreatState");
    name = pick(p, "DeviceName", "deviceName");
    parts[0] = pick(p, "DeviceId", "id");
    parts[1] = state;
    parts[2] = threat;
    parts[3] = normlib_text(obj, "time", when, sizeof(when));
    if (parts[0] == NULL) {
        return kg_err(errp, "DeviceId: required (the device's Intune id)");
    }
    normlib_set_id_parts(a, parts, 4); /* one record per device and report */
    t = normlib_is(threat, "Secured") ? SEV_INFO : severity_from_name(threat);
    if (normlib_is(state, "Noncompliant")) {
        sev = normlib_sev_max(SEV_LOW, t);
    } else if (normlib_is(state, "Compliant")) {
        sev = normlib_sev_max(SEV_INFO, t);
    } else {
        sev = normlib_sev_max(normlib_is(state, "InGracePeriod") ? SEV_LOW : SEV_INFO, t);
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    normlib_outcome(a, "unknown");
    normlib_category(a, "compliance");
    normlib_vendor_severity(a, threat);
    normlib_title(a, "Device %s: %s (threat level %s)", name ? name : parts[0],
                  state ? state : "unknown", threat ? threat : "unknown");
    normlib_obs(a, "device", pick(p, "AADDeviceId", "azureADDeviceId"), "affected");
    normlib_obs(a, "device", parts[0], "affected");
    normlib_obs(a, "host", name, "affected");
    normlib_obs(a, "user", pick(p, "UPN", "userPrincipalName"), "owner");
    return 0;
}

static int
intune_normalize(const cJSON *obj, const char *source, struct alert *a, char **errp)
{
    return strcmp(source, "intune.audit") == 0 ? audit(obj, a, errp) : device(obj, a, errp);
}

const struct norm_family norm_intune_family = {
    "intune",
    intune_sources,
    intune_detect,
    intune_normalize,
};
