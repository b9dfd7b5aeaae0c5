/* norm_defender.c: Microsoft Defender XDR (Endpoint, Office 365): Graph security
 * alerts_v2 alerts and incidents with their evidence, and the streaming API's
 * advanced-hunting rows ({"category":"AdvancedHunting-<Table>","properties":{...}}).
 * Rules: docs/sources.md. */
#include "engine/norm_defender.h"

#include <stdlib.h>
#include <string.h>

#include "engine/json.h"
#include "engine/normlib.h"

static const char *const defender_sources[] = {
    "defender.alert",    "mdo.alert",        "defender.incident",
    "defender.evidence", "mdo.email",        "mdo.urlclick",
    "mdo.postdelivery",  "defender.hunting", NULL,
};

#define AH_PREFIX "AdvancedHunting-"

static const char *
defender_detect(const cJSON *obj)
{
    const char *cat = normlib_str(obj, "category");
    const char *type = json_get_string(obj, "@odata.type");

    if (cat != NULL && normlib_starts(cat, AH_PREFIX)) {
        cat += strlen(AH_PREFIX);
        if (normlib_is(cat, "AlertInfo")) {
            const char *svc = normlib_str(obj, "properties.ServiceSource");

            return svc != NULL && strstr(svc, "Office 365") != NULL ? "mdo.alert"
                                                                    : "defender.alert";
        }
        if (normlib_is(cat, "AlertEvidence")) {
            return "defender.evidence";
        }
        if (normlib_is(cat, "EmailEvents")) {
            return "mdo.email";
        }
        if (normlib_is(cat, "UrlClickEvents")) {
            return "mdo.urlclick";
        }
        if (normlib_is(cat, "EmailPostDeliveryEvents")) {
            return "mdo.postdelivery";
        }
        return "defender.hunting";
    }
    if (normlib_is(type, "#microsoft.graph.security.incident") ||
        (type == NULL && normlib_get(obj, "incidentWebUrl") != NULL &&
         normlib_get(obj, "displayName") != NULL)) {
        return "defender.incident";
    }
    if (normlib_is(type, "#microsoft.graph.security.alert") ||
        (type == NULL && normlib_get(obj, "serviceSource") != NULL &&
         normlib_get(obj, "detectionSource") != NULL && normlib_get(obj, "id") != NULL)) {
        return normlib_is(normlib_str(obj, "serviceSource"), "microsoftDefenderForOffice365")
                   ? "mdo.alert"
                   : "defender.alert";
    }
    return NULL;
}

/* What the evidence of an alert says happened. */
struct verdict {
    int active;     /* a file or process detected and not remediated: it ran */
    int remediated; /* something was cleaned up after it happened */
    int blocked;    /* prevented or blocked before it happened */
    int delivered;  /* a message reached a mailbox */
    int mail_stopped;
};

static const char *
first_role(const cJSON *ev, const char *dflt)
{
    const cJSON *roles = normlib_get(ev, "roles");

    if (cJSON_IsArray(roles) && cJSON_IsString(cJSON_GetArrayItem(roles, 0)) &&
        cJSON_GetArrayItem(roles, 0)->valuestring[0] != '\0') {
        return cJSON_GetArrayItem(roles, 0)->valuestring;
    }
    return dflt;
}

static void
user_account(struct alert *a, const cJSON *acct, const char *role)
{
    const char *upn = normlib_str(acct, "userPrincipalName");

    if (upn != NULL) {
        normlib_obs(a, "user", upn, role);
    } else {
        normlib_account(a, normlib_str(acct, "domainName"), normlib_str(acct, "accountName"), role);
    }
}

static void
file_details(struct alert *a, const cJSON *f, const char *role)
{
    normlib_obs(a, "hash", normlib_str(f, "sha256"), role);
    normlib_obs(a, "hash", normlib_str(f, "sha1"), role);
}

/* The status words of one piece of evidence into *v. */
static void
evidence_status(const cJSON *ev, struct verdict *v)
{
    const char *det = normlib_str(ev, "detectionStatus");
    const char *rem = normlib_str(ev, "remediationStatus");

    if (normlib_is(det, "prevented") || normlib_is(det, "blocked") ||
        normlib_is(rem, "prevented") || normlib_is(rem, "blocked")) {
        v->blocked = 1;
    } else if (normlib_is(rem, "remediated")) {
        v->remediated = 1;
    } else if (normlib_is(det, "detected")) {
        v->active = 1;
    }
}

static const char *const mail_stopped_actions[] = { "blocked", NULL };
static const char *const mail_stopped_places[] = { "quarantine", "dropped", "failed", NULL };

/* Observables and status of one Graph evidence object. */
static void
evidence(struct alert *a, const cJSON *ev, struct verdict *v)
{
    const char *type = json_get_string(ev, "@odata.type");
    const cJSON *urls, *it;

    if (type == NULL) {
        return;
    }
    if (strncmp(type, "#microsoft.graph.security.", 26) == 0) {
        type += 26;
    }
    if (strcmp(type, "deviceEvidence") == 0) {
        const char *role = first_role(ev, "affected");
        const cJSON *ips = normlib_get(ev, "ipInterfaces");

        normlib_obs(a, "device", normlib_str(ev, "mdeDeviceId"), role);
        normlib_obs(a, "device", normlib_str(ev, "azureAdDeviceId"), role);
        normlib_obs(a, "host", normlib_str(ev, "deviceDnsName"), role);
        if (cJSON_IsArray(ips)) {
            cJSON_ArrayForEach(it, ips)
            {
                normlib_obs(a, "ip", cJSON_IsString(it) ? it->valuestring : NULL, role);
            }
        }
    } else if (strcmp(type, "fileEvidence") == 0) {
        file_details(a, normlib_get(ev, "fileDetails"), first_role(ev, "related"));
        evidence_status(ev, v);
    } else if (strcmp(type, "processEvidence") == 0) {
        const char *role = first_role(ev, "related");

        normlib_obs(a, "process", normlib_str(ev, "processCommandLine"), role);
        file_details(a, normlib_get(ev, "imageFile"), role);
        user_account(a, normlib_get(ev, "userAccount"), role);
        evidence_status(ev, v);
    } else if (strcmp(type, "userEvidence") == 0) {
        user_account(a, normlib_get(ev, "userAccount"), first_role(ev, "affected"));
    } else if (strcmp(type, "ipEvidence") == 0) {
        normlib_obs(a, "ip", normlib_str(ev, "ipAddress"), first_role(ev, "related"));
    } else if (strcmp(type, "urlEvidence") == 0) {
        normlib_url(a, normlib_str(ev, "url"), first_role(ev, "related"));
    } else if (strcmp(type, "mailboxEvidence") == 0) {
        normlib_obs(a, "email", normlib_str(ev, "primaryAddress"), "recipient");
        user_account(a, normlib_get(ev, "userAccount"), first_role(ev, "recipient"));
    } else if (strcmp(type, "analyzedMessageEvidence") == 0) {
        const char *action = normlib_str(ev, "deliveryAction");
        const char *place = normlib_str(ev, "deliveryLocation");

        normlib_obs(a, "email", normlib_str(ev, "p1Sender.emailAddress"), "sender");
        normlib_obs(a, "email", normlib_str(ev, "p2Sender.emailAddress"), "sender");
        normlib_obs(a, "email", normlib_str(ev, "recipientEmailAddress"), "recipient");
        normlib_obs(a, "ip", normlib_str(ev, "senderIp"), "sender");
        urls = normlib_get(ev, "urls");
        if (cJSON_IsArray(urls)) {
            cJSON_ArrayForEach(it, urls)
            {
                normlib_url(a, cJSON_IsString(it) ? it->valuestring : NULL, "related");
            }
        }
        if (normlib_in(action, mail_stopped_actions) || normlib_in(place, mail_stopped_places)) {
            v->mail_stopped = 1;
        } else if (action != NULL) {
            v->delivered = 1;
        }
        if (normlib_is(normlib_str(ev, "remediationStatus"), "remediated")) {
            v->remediated = 1;
        }
    } else {
        evidence_status(ev, v);
    }
}

static void
evidence_list(struct alert *a, const cJSON *list, struct verdict *v)
{
    const cJSON *ev;

    if (!cJSON_IsArray(list)) {
        return;
    }
    cJSON_ArrayForEach(ev, list)
    {
        if (cJSON_IsObject(ev)) {
            evidence(a, ev, v);
        }
    }
}

/* Outcome and level from the vendor level and the evidence (docs/sources.md). */
static void
apply_verdict(struct alert *a, int vendor, const struct verdict *v)
{
    int sev = vendor;

    if (v->active) {
        normlib_outcome(a, "succeeded");
        sev = normlib_sev_add(vendor, 1);
    } else if (v->delivered) {
        normlib_outcome(a, "succeeded");
        sev = normlib_sev_max(vendor, SEV_MEDIUM);
        if (!v->remediated) {
            sev = normlib_sev_add(sev, 1);
        }
    } else if (v->remediated) {
        normlib_outcome(a, "succeeded");
    } else if (v->blocked || v->mail_stopped) {
        normlib_outcome(a, "blocked");
        sev = vendor > SEV_LOW ? SEV_LOW : vendor;
    } else {
        normlib_outcome(a, "unknown");
    }
    a->severity = sev;
}

static int
graph_alert(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "createdDateTime", "firstActivityDateTime", NULL };
    const char *id = normlib_str(obj, "id");
    const char *title = normlib_str(obj, "title");
    const char *sev = normlib_str(obj, "severity");
    struct verdict v = { 0 };
    int vendor;

    if (id == NULL) {
        return kg_err(errp, "id: required (the alert's id)");
    }
    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    vendor = normlib_ms_severity(sev);
    if (sev != NULL && vendor < 0) {
        vendor = SEV_MEDIUM; /* a new level name: review it */
    }
    normlib_set_id(a, id);
    normlib_title(a, "%s", title != NULL ? title : "Defender alert");
    normlib_category(a, normlib_str(obj, "category"));
    normlib_vendor_severity(a, sev);
    evidence_list(a, normlib_get(obj, "evidence"), &v);
    apply_verdict(a, vendor < 0 ? SEV_MEDIUM : vendor, &v);
    a->cls = ALERT_CLASS_ALERT;
    return 0;
}

static int
graph_incident(const cJSON *obj, struct alert *a, char **errp)
{
    static const char *const times[] = { "createdDateTime", NULL };
    const cJSON *alerts = normlib_get(obj, "alerts");
    const cJSON *it;
    char id[64];
    const char *sev = normlib_str(obj, "severity");
    struct verdict v = { 0 };
    int vendor = normlib_ms_severity(sev);

    normlib_text(obj, "id", id, sizeof(id));
    if (id[0] == '\0') {
        return kg_err(errp, "id: required (the incident's id)");
    }
    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    normlib_set_id(a, id);
    normlib_title(a, "Incident %s: %s", id,
                  normlib_str(obj, "displayName") ? normlib_str(obj, "displayName") : "?");
    normlib_category(a, normlib_str(obj, "classification"));
    normlib_vendor_severity(a, sev);
    if (cJSON_IsArray(alerts)) {
        cJSON_ArrayForEach(it, alerts)
        {
            evidence_list(a, normlib_get(it, "evidence"), &v);
        }
    }
    apply_verdict(a, vendor < 0 ? SEV_MEDIUM : vendor, &v);
    a->cls = ALERT_CLASS_ALERT;
    return 0;
}

/* The streamed row and its time. */
static int
ah_row(const cJSON *obj, struct alert *a, const cJSON **pp, char **errp)
{
    static const char *const times[] = { "properties.Timestamp", "time", NULL };

    *pp = normlib_obj(obj, "properties");
    if (*pp == NULL) {
        return kg_err(errp, "properties: expected an object (the streamed row)");
    }
    return normlib_set_time(a, obj, times, errp);
}

/* DetectionStatus inside the AdditionalFields JSON string, when it decodes. */
static char *
additional_status(const cJSON *p)
{
    const char *s = normlib_str(p, "AdditionalFields");
    cJSON *tree = NULL;
    char *err = NULL, *out = NULL;

    if (s == NULL || strstr(s, "DetectionStatus") == NULL) {
        return NULL;
    }
    if (json_parse_strict(s, strlen(s), 8, &tree, &err) == -1) {
        free(err);
        return NULL;
    }
    if (normlib_str(tree, "DetectionStatus") != NULL) {
        out = xstrdup(normlib_str(tree, "DetectionStatus"));
    }
    cJSON_Delete(tree);
    return out;
}

/* The columns that name entities, shared by the advanced-hunting tables. */
static void
ah_observables(struct alert *a, const cJSON *p, const char *role)
{
    normlib_obs(a, "device", normlib_str(p, "DeviceId"), role);
    normlib_obs(a, "host", normlib_str(p, "DeviceName"), role);
    normlib_obs(a, "ip", normlib_str(p, "LocalIP"), role);
    normlib_obs(a, "hash", normlib_str(p, "SHA256"), role);
    normlib_obs(a, "hash", normlib_str(p, "SHA1"), role);
    normlib_obs(a, "process", normlib_str(p, "ProcessCommandLine"), role);
    normlib_obs(a, "ip", normlib_str(p, "RemoteIP"), "dst");
    normlib_url(a, normlib_str(p, "RemoteUrl"), "dst");
    if (normlib_str(p, "AccountUpn") != NULL) {
        normlib_obs(a, "user", normlib_str(p, "AccountUpn"), role);
    } else {
        normlib_account(a, normlib_str(p, "AccountDomain"), normlib_str(p, "AccountName"), role);
    }
    normlib_obs(a, "user", normlib_str(p, "InitiatingProcessAccountUpn"), role);
}

static int
ah_alert_info(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p;
    const char *id, *sev;
    int vendor;

    if (ah_row(obj, a, &p, errp) == -1) {
        return -1;
    }
    if ((id = normlib_str(p, "AlertId")) == NULL) {
        return kg_err(errp, "properties.AlertId: required");
    }
    sev = normlib_str(p, "Severity");
    vendor = normlib_ms_severity(sev);
    normlib_set_id(a, id);
    normlib_title(a, "%s", normlib_str(p, "Title") ? normlib_str(p, "Title") : "Defender alert");
    normlib_category(a, normlib_str(p, "Category"));
    normlib_vendor_severity(a, sev);
    a->severity = vendor < 0 ? SEV_MEDIUM : vendor;
    a->cls = ALERT_CLASS_ALERT;
    normlib_outcome(a, "unknown"); /* the status is in the AlertEvidence rows */
    return 0;
}

static int
ah_evidence(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p;
    const char *parts[8];
    const char *role;
    char *status;
    int vendor;

    if (ah_row(obj, a, &p, errp) == -1) {
        return -1;
    }
    if ((parts[0] = normlib_str(p, "AlertId")) == NULL) {
        return kg_err(errp, "properties.AlertId: required");
    }
    parts[1] = normlib_str(p, "EntityType");
    parts[2] = normlib_str(p, "DeviceId");
    parts[3] = normlib_str(p, "SHA1");
    parts[4] = normlib_str(p, "RemoteIP");
    parts[5] = normlib_str(p, "RemoteUrl");
    parts[6] = normlib_str(p, "AccountSid");
    parts[7] = normlib_str(p, "NetworkMessageId");
    normlib_set_id_parts(a, parts, 8);
    vendor = normlib_ms_severity(normlib_str(p, "Severity"));
    normlib_title(a, "Evidence %s of %s", parts[1] ? parts[1] : "?",
                  normlib_str(p, "Title") ? normlib_str(p, "Title") : parts[0]);
    normlib_category(a, parts[1]);
    normlib_vendor_severity(a, normlib_str(p, "Severity"));
    a->severity = vendor < 0 ? SEV_INFO : vendor;
    a->cls = ALERT_CLASS_EVENT; /* part of the alert its AlertInfo row is */
    status = additional_status(p);
    if (normlib_is(status, "Detected")) {
        normlib_outcome(a, "succeeded");
    } else if (normlib_is(status, "Blocked") || normlib_is(status, "Prevented")) {
        normlib_outcome(a, "blocked");
    } else {
        normlib_outcome(a, "unknown");
    }
    free(status);
    role = normlib_is(normlib_str(p, "EvidenceRole"), "Impacted") ? "affected" : "related";
    ah_observables(a, p, role);
    return 0;
}

static int
ah_email(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p;
    const char *parts[2];
    const char *action, *place, *threats;
    int sev = SEV_INFO;

    if (ah_row(obj, a, &p, errp) == -1) {
        return -1;
    }
    parts[0] = normlib_str(p, "NetworkMessageId");
    parts[1] = normlib_str(p, "RecipientEmailAddress");
    if (parts[0] == NULL) {
        return kg_err(errp, "properties.NetworkMessageId: required");
    }
    normlib_set_id_parts(a, parts, 2);
    action = normlib_str(p, "DeliveryAction");
    place = normlib_str(p, "DeliveryLocation");
    threats = normlib_str(p, "ThreatTypes");
    if (normlib_in(action, mail_stopped_actions) || normlib_starts(place, "Quarantine") ||
        normlib_starts(place, "Dropped") || normlib_starts(place, "Failed")) {
        normlib_outcome(a, "blocked");
        sev = threats != NULL ? SEV_LOW : SEV_INFO;
    } else if (action != NULL) {
        normlib_outcome(a, "succeeded");
        sev = threats != NULL ? SEV_MEDIUM : SEV_INFO;
    } else {
        normlib_outcome(a, "unknown");
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    normlib_category(a, threats != NULL ? threats : "mail");
    normlib_title(a, "Mail \"%s\" from %s to %s: %s",
                  normlib_str(p, "Subject") ? normlib_str(p, "Subject") : "",
                  normlib_str(p, "SenderFromAddress") ? normlib_str(p, "SenderFromAddress") : "?",
                  parts[1] ? parts[1] : "?", action ? action : "?");
    normlib_obs(a, "email", normlib_str(p, "SenderMailFromAddress"), "sender");
    normlib_obs(a, "email", normlib_str(p, "SenderFromAddress"), "sender");
    normlib_obs(a, "email", parts[1], "recipient");
    normlib_obs(a, "ip", normlib_str(p, "SenderIPv4"), "sender");
    normlib_obs(a, "ip", normlib_str(p, "SenderIPv6"), "sender");
    normlib_obs(a, "domain", normlib_str(p, "SenderFromDomain"), "sender");
    return 0;
}

static int
ah_urlclick(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p;
    const char *parts[4];
    const char *action, *threats, *url;
    int sev;

    if (ah_row(obj, a, &p, errp) == -1) {
        return -1;
    }
    url = normlib_str(p, "Url");
    action = normlib_str(p, "ActionType");
    threats = normlib_str(p, "ThreatTypes");
    parts[0] = normlib_str(p, "Timestamp");
    parts[1] = url;
    parts[2] = normlib_str(p, "AccountUpn");
    parts[3] = normlib_str(p, "ReportId");
    if (url == NULL) {
        return kg_err(errp, "properties.Url: required");
    }
    normlib_set_id_parts(a, parts, 4);
    if (normlib_is(action, "ClickAllowed") || normlib_bool(p, "IsClickedThrough") == 1) {
        normlib_outcome(a, "succeeded");
        sev = threats != NULL ? SEV_HIGH : SEV_INFO;
    } else if (normlib_is(action, "ClickBlocked")) {
        normlib_outcome(a, "blocked");
        sev = threats != NULL ? SEV_LOW : SEV_INFO;
    } else {
        normlib_outcome(a, "unknown");
        sev = threats != NULL ? SEV_LOW : SEV_INFO;
    }
    a->severity = sev;
    a->cls = normlib_log_class(sev);
    normlib_category(a, threats != NULL ? threats : "url-click");
    normlib_title(a, "URL click by %s: %s", parts[2] ? parts[2] : "?", action ? action : "?");
    normlib_obs(a, "user", parts[2], "actor");
    normlib_obs(a, "ip", normlib_str(p, "IPAddress"), "src");
    normlib_url(a, url, "dst");
    return 0;
}

static int
ah_postdelivery(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p;
    const char *parts[3];
    const char *type, *result;

    if (ah_row(obj, a, &p, errp) == -1) {
        return -1;
    }
    parts[0] = normlib_str(p, "NetworkMessageId");
    parts[1] = normlib_str(p, "RecipientEmailAddress");
    parts[2] = normlib_str(p, "ReportId");
    if (parts[0] == NULL) {
        return kg_err(errp, "properties.NetworkMessageId: required");
    }
    normlib_set_id_parts(a, parts, 3);
    type = normlib_str(p, "ActionType");
    result = normlib_str(p, "ActionResult");
    /* A remediation: the message was taken away from the mailbox when it worked. */
    normlib_outcome(a, normlib_is(result, "Success") ? "blocked" : "unknown");
    a->severity = SEV_INFO;
    a->cls = ALERT_CLASS_EVENT;
    normlib_category(a, type != NULL ? type : "post-delivery");
    normlib_title(a, "%s on mail to %s: %s", type ? type : "Post-delivery action",
                  parts[1] ? parts[1] : "?", result ? result : "?");
    normlib_obs(a, "email", parts[1], "recipient");
    return 0;
}

static int
ah_other(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p;
    const char *cat = normlib_str(obj, "category") + strlen(AH_PREFIX);

    if (ah_row(obj, a, &p, errp) == -1) {
        return -1;
    }
    a->severity = SEV_INFO;
    a->cls = ALERT_CLASS_EVENT;
    normlib_outcome(a, "unknown");
    normlib_category(a, cat);
    normlib_title(a, "%s %s", cat,
                  normlib_str(p, "ActionType") ? normlib_str(p, "ActionType") : "row");
    ah_observables(a, p, "related");
    return 0;
}

static int
defender_normalize(const cJSON *obj, const char *source, struct alert *a, char **errp)
{
    int streamed = normlib_starts(normlib_str(obj, "category"), AH_PREFIX);

    if (strcmp(source, "defender.incident") == 0) {
        return graph_incident(obj, a, errp);
    }
    if (strcmp(source, "defender.alert") == 0 || strcmp(source, "mdo.alert") == 0) {
        return streamed ? ah_alert_info(obj, a, errp) : graph_alert(obj, a, errp);
    }
    if (strcmp(source, "defender.evidence") == 0) {
        return ah_evidence(obj, a, errp);
    }
    if (strcmp(source, "mdo.email") == 0) {
        return ah_email(obj, a, errp);
    }
    if (strcmp(source, "mdo.urlclick") == 0) {
        return ah_urlclick(obj, a, errp);
    }
    if (strcmp(source, "mdo.postdelivery") == 0) {
        return ah_postdelivery(obj, a, errp);
    }
    return ah_other(obj, a, errp);
}

const struct norm_family norm_defender_family = {
    "defender",
    defender_sources,
    defender_detect,
    defender_normalize,
};
