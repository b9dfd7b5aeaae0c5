/* norm_azure.c: the Azure Activity log (control-plane operations) and Azure Bastion
 * session logs, as diagnostic-setting records. Rules: docs/sources.md. */
#include "engine/norm_azure.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "engine/json.h"
#include "engine/normlib.h"

static const char *const azure_sources[] = { "azure.activity", "azure.bastion", NULL };

/* Activity log categories (the documented ones and those seen in exports). */
static const char *const activity_categories[] = {
    "Administrative", "Write",     "Action",         "Delete",        "Security",       "Policy",
    "Alert",          "Autoscale", "Recommendation", "ServiceHealth", "ResourceHealth", NULL,
};

static const char *
azure_detect(const cJSON *obj)
{
    const char *cat = normlib_str(obj, "category");
    const char *op = normlib_str(obj, "operationName");

    if (cat == NULL) {
        return NULL;
    }
    if (normlib_is(cat, "BastionAuditLogs")) {
        return "azure.bastion";
    }
    /* A resource provider operation ("Microsoft.X/y/write") in an activity category. */
    if (normlib_in(cat, activity_categories) && op != NULL && strchr(op, '/') != NULL) {
        return "azure.activity";
    }
    return NULL;
}

/* Operations that change who may do what, open the network, hide activity or reach
 * secrets: their level when they succeed. Matched case-insensitively. */
struct op_level {
    const char *op;
    int sev;
};

static const struct op_level op_levels[] = {
    { "Microsoft.Authorization/roleAssignments/write", SEV_HIGH },
    { "Microsoft.Authorization/roleDefinitions/write", SEV_HIGH },
    { "Microsoft.Authorization/elevateAccess/action", SEV_HIGH },
    { "Microsoft.Network/networkSecurityGroups/securityRules/write", SEV_HIGH },
    { "microsoft.insights/diagnosticSettings/delete", SEV_HIGH },
    { "Microsoft.Insights/diagnosticSettings/write", SEV_LOW },
    { "Microsoft.Compute/virtualMachines/runCommand/action", SEV_HIGH },
    { "Microsoft.Compute/disks/beginGetAccess/action", SEV_HIGH },
    { "Microsoft.Compute/snapshots/beginGetAccess/action", SEV_HIGH },
    { "Microsoft.Storage/storageAccounts/listKeys/action", SEV_MEDIUM },
    { "Microsoft.Compute/virtualMachines/extensions/write", SEV_MEDIUM },
    { "Microsoft.KeyVault/vaults/write", SEV_MEDIUM },
    { "Microsoft.KeyVault/vaults/delete", SEV_MEDIUM },
    { "Microsoft.KeyVault/vaults/accessPolicies/write", SEV_MEDIUM },
    { "Microsoft.Network/networkSecurityGroups/delete", SEV_MEDIUM },
    { "Microsoft.Resources/subscriptions/resourceGroups/delete", SEV_MEDIUM },
    { NULL, 0 },
};

/* Built-in roles that hand out control of the scope: Owner, Contributor, User Access
 * Administrator. A role assignment granting one of them is Critical. */
static const char *const powerful_roles[] = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
    "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "18d7d88d-d35e-4fb5-a5c3-7773c4a72d9d",
    NULL,
};

static int
op_level(const char *op, const cJSON *obj)
{
    for (const struct op_level *x = op_levels; x->op != NULL; x++) {
        if (strcasecmp(op, x->op) == 0) {
            int sev = x->sev;

            if (strcasecmp(op, "Microsoft.Authorization/roleAssignments/write") == 0) {
                /* The role is in the request (Start) or the response (Success). */
                const char *req = normlib_str(obj, "properties.requestbody");
                const char *resp = normlib_str(obj, "properties.responseBody");

                for (const char *const *r = powerful_roles; *r != NULL; r++) {
                    if ((req != NULL && strstr(req, *r) != NULL) ||
                        (resp != NULL && strstr(resp, *r) != NULL)) {
                        sev = SEV_CRITICAL;
                    }
                }
            }
            return sev;
        }
    }
    return SEV_INFO;
}

/* A claim of the caller's token: the claims object's keys are URIs with dots. */
static const char *
claim(const cJSON *obj, const char *key)
{
    const cJSON *claims = normlib_obj(obj, "identity.claims");
    const char *s = claims != NULL ? json_get_string(claims, key) : NULL;

    if (claims == NULL) {
        claims = normlib_obj(obj, "claims"); /* some exports lift them */
        s = claims != NULL ? json_get_string(claims, key) : NULL;
    }
    return s != NULL && s[0] != '\0' ? s : NULL;
}

static int
activity(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "time", "eventTimestamp", NULL };
    const char *op = normlib_str(obj, "operationName");
    const char *result = normlib_str(obj, "resultType");
    const char *sig = normlib_str(obj, "resultSignature");
    const char *upn = claim(obj, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn");
    const char *amr = claim(obj, "http://schemas.microsoft.com/claims/authnmethodsreferences");
    const char *ip = normlib_str(obj, "callerIpAddress");
    const char *parts[5];
    int sev;

    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    if (upn == NULL) {
        upn = claim(obj, "upn");
    }
    if (amr == NULL) {
        amr = claim(obj, "amr");
    }
    if (ip == NULL) {
        ip = claim(obj, "ipaddr");
    }
    parts[0] = normlib_str(obj, "properties.eventDataId");
    parts[1] = normlib_str(obj, "correlationId");
    parts[2] = op;
    parts[3] = result;
    parts[4] = normlib_str(obj, "resourceId");
    if (parts[0] != NULL) {
        normlib_set_id(a, parts[0]);
    } else if (parts[1] != NULL) {
        /* Start and Success of one operation share the correlation id: both are kept. */
        normlib_set_id_parts(a, parts + 1, 4);
    }
    sev = op_level(op, obj);
    if (normlib_is(result, "Success") || normlib_starts(sig, "Succeeded")) {
        normlib_outcome(a, "succeeded");
    } else if (normlib_is(result, "Failure") || normlib_starts(sig, "Failed")) {
        normlib_outcome(a, "blocked");
        sev = sev > SEV_LOW ? SEV_LOW : sev;
    } else {
        /* Start, Accept: the outcome comes in a later record of the same operation. */
        normlib_outcome(a, "attempted");
        sev = SEV_INFO;
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    {
        const char *cat = normlib_str(obj, "properties.eventCategory");

        normlib_category(a, cat != NULL ? cat : normlib_str(obj, "category"));
    }
    normlib_vendor_severity(a, normlib_str(obj, "level"));
    normlib_title(a, "%s by %s from %s: %s%s", op,
                  upn                  ? upn
                  : claim(obj, "name") ? claim(obj, "name")
                                       : "?",
                  ip ? ip : "?", result ? result : "?",
                  amr == NULL || strstr(amr, "mfa") != NULL ? "" : " (no MFA in the token)");
    normlib_obs(a, "user", upn, "actor");
    normlib_obs(a, "ip", ip, "src");
    return 0;
}

static int
bastion(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "time", NULL };
    const cJSON *p = normlib_obj(obj, "properties");
    const char *msg, *user, *email, *target, *parts[3];
    char port[24];

    if (p == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    msg = normlib_str(p, "message");
    user = normlib_str(p, "userName");
    email = normlib_str(p, "userEmail");
    target = normlib_str(p, "targetResourceId");
    parts[0] = normlib_str(p, "tunnelId");
    parts[1] = msg;
    parts[2] = normlib_text(p, "clientPort", port, sizeof(port));
    if (parts[0] != NULL || msg != NULL) {
        normlib_set_id_parts(a, parts, 3);
    } /* else the record's hash */
    if (msg != NULL && strcasestr(msg, "Success") != NULL) {
        normlib_outcome(a, "succeeded");
        a->severity = SEV_INFO;
    } else if (msg != NULL && strcasestr(msg, "Fail") != NULL) {
        normlib_outcome(a, "blocked");
        a->severity = SEV_LOW;
    } else {
        normlib_outcome(a, "unknown");
        a->severity = SEV_INFO;
    }
    a->cls = ALERT_CLASS_ALERT; /* few, and each one is a remote session into a VM */
    normlib_category(a, normlib_str(p, "protocol"));
    {
        const char *vm = target != NULL ? strrchr(target, '/') : NULL;

        normlib_title(a, "Bastion %s session by %s as %s to %s: %s",
                      normlib_str(p, "protocol") ? normlib_str(p, "protocol") : "?",
                      email ? email : "?", user ? user : "?", vm ? vm + 1 : "?", msg ? msg : "?");
    }
    normlib_obs(a, "user", email, "actor");
    normlib_obs(a, "user", user, "target");
    normlib_obs(a, "ip", normlib_str(p, "clientIpAddress"), "src");
    normlib_obs(a, "ip", normlib_str(p, "targetVMIPAddress"), "dst");
    if (target != NULL && strrchr(target, '/') != NULL && strrchr(target, '/')[1] != '\0') {
        char host[256];

        snprintf(host, sizeof(host), "%s", strrchr(target, '/') + 1);
        for (char *c = host; *c != '\0'; c++) {
            *c = (char)(*c >= 'A' && *c <= 'Z' ? *c - 'A' + 'a' : *c);
        }
        normlib_obs(a, "host", host, "dst");
    }
    return 0;
}

static int
azure_normalize(const cJSON *obj, const char *source, struct alert *a, char **errp)
{
    return strcmp(source, "azure.activity") == 0 ? activity(obj, a, errp) : bastion(obj, a, errp);
}

const struct norm_family norm_azure_family = {
    "azure",
    azure_sources,
    azure_detect,
    azure_normalize,
};
