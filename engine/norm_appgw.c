/* norm_appgw.c: Azure Application Gateway access logs and its WAF (Azure Web
 * Application Firewall) logs, as diagnostic-setting records and as the
 * resource-specific AGW* tables. Rules: docs/sources.md. */
#include "engine/norm_appgw.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/normlib.h"

static const char *const appgw_sources[] = { "azure.appgw", "azure.waf", NULL };

/* The anomaly-scoring verdict rule of the OWASP core rule sets: the one row that says
 * what happened to the request. */
#define WAF_VERDICT_RULE "949110"

static const char *
appgw_detect(const cJSON *obj)
{
    const char *cat = normlib_str(obj, "category");

    if (normlib_is(cat, "ApplicationGatewayAccessLog") || normlib_is(cat, "AGWAccessLogs") ||
        normlib_is(cat, "ApplicationGatewayPerformanceLog")) {
        return "azure.appgw";
    }
    if (normlib_is(cat, "ApplicationGatewayFirewallLog") || normlib_is(cat, "AGWFirewallLogs")) {
        return "azure.waf";
    }
    return NULL;
}

/* The first string of the spellings the gateway uses for one field. */
static const char *
pick(const cJSON *p, const char *k1, const char *k2)
{
    const char *s = normlib_str(p, k1);

    return s != NULL ? s : normlib_str(p, k2);
}

/* "https://host/path?query" from the access record's parts, for the url observable. */
static char *
request_url(const cJSON *p, const char *host)
{
    const char *uri = pick(p, "originalRequestUriWithArgs", "requestUri");
    const char *ssl = normlib_str(p, "sslEnabled");

    if (host == NULL || uri == NULL) {
        return NULL;
    }
    return xasprintf("%s://%s%s", normlib_is(ssl, "on") ? "https" : "http", host, uri);
}

static const char *const time_keys[] = { "time", "timeStamp", "timestamp", "TimeGenerated", NULL };

static int
access(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p = normlib_obj(obj, "properties");
    const char *host, *client, *tx, *method, *uri;
    char status[16], sent[24];
    double st = 0;
    char *url;

    if (p == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    if (normlib_set_time(a, obj, time_keys, errp) == -1) {
        return -1;
    }
    host = pick(p, "host", "originalHost");
    client = pick(p, "clientIP", "clientIp");
    tx = normlib_str(p, "transactionId");
    method = normlib_str(p, "httpMethod");
    uri = normlib_str(p, "requestUri");
    normlib_text(p, "httpStatus", status, sizeof(status));
    normlib_text(p, "sentBytes", sent, sizeof(sent));
    if (tx != NULL) {
        normlib_set_id(a, tx);
    }
    if (normlib_num(p, "httpStatus", &st) == 0 && st >= 200 && st < 400) {
        normlib_outcome(a, "succeeded");
    } else if (st == 403 && normlib_str(p, "serverRouted") == NULL) {
        normlib_outcome(a, "blocked"); /* refused at the gateway, never routed */
    } else if (st >= 400) {
        normlib_outcome(a, "attempted");
    } else {
        normlib_outcome(a, "unknown");
    }
    a->severity = SEV_INFO;
    a->cls = ALERT_CLASS_EVENT;
    normlib_category(a, normlib_is(normlib_str(obj, "category"), "ApplicationGatewayPerformanceLog")
                            ? "performance"
                            : "access");
    normlib_title(a, "%s %s%s from %s: %s (%s bytes)", method ? method : "?", host ? host : "",
                  uri ? uri : "?", client ? client : "?", status[0] ? status : "?",
                  sent[0] ? sent : "?");
    normlib_obs(a, "ip", client, "src");
    normlib_obs(a, "domain", host, "dst");
    url = request_url(p, host);
    normlib_obs(a, "url", url, "dst");
    free(url);
    return 0;
}

static int
waf(const cJSON *obj, struct alert *a, char **errp)
{
    const cJSON *p = normlib_obj(obj, "properties");
    const char *action, *rule, *set, *client, *host, *uri, *msg, *parts[3];
    char rulebuf[64];
    int verdict, sev;

    if (p == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    if (normlib_set_time(a, obj, time_keys, errp) == -1) {
        return -1;
    }
    action = normlib_str(p, "action");
    rule = normlib_text(p, "ruleId", rulebuf, sizeof(rulebuf));
    set = normlib_str(p, "ruleSetType");
    client = pick(p, "clientIp", "clientIP");
    host = pick(p, "hostname", "host");
    uri = normlib_str(p, "requestUri");
    msg = normlib_str(p, "message");
    if (action == NULL) {
        return kg_err(errp, "properties.action: required (what the WAF did)");
    }
    parts[0] = normlib_str(p, "transactionId");
    parts[1] = rule;
    parts[2] = action;
    if (parts[0] != NULL) {
        normlib_set_id_parts(a, parts, 3);
    }
    /* The row that decides: the anomaly verdict, a custom rule, or a block. */
    verdict = strcmp(rule, WAF_VERDICT_RULE) == 0 || normlib_is(set, "Custom") ||
              normlib_is(action, "Blocked");
    if (normlib_is(action, "Blocked") || normlib_is(action, "JSChallengeBlock")) {
        normlib_outcome(a, "blocked");
        sev = SEV_LOW;
    } else if (normlib_is(action, "Detected")) {
        normlib_outcome(a, "attempted"); /* detection mode: the request went on */
        sev = verdict ? SEV_MEDIUM : SEV_LOW;
    } else if (normlib_is(action, "Matched")) {
        normlib_outcome(a, "attempted"); /* the transaction's verdict row decides */
        sev = SEV_INFO;
    } else if (normlib_is(action, "Allowed")) {
        normlib_outcome(a, "succeeded");
        sev = SEV_INFO;
    } else {
        normlib_outcome(a, "unknown");
        sev = SEV_INFO;
    }
    a->severity = sev;
    a->cls = verdict ? ALERT_CLASS_ALERT : ALERT_CLASS_EVENT;
    normlib_category(a, normlib_str(p, "ruleGroup") ? normlib_str(p, "ruleGroup") : set);
    normlib_vendor_severity(a, action);
    normlib_title(a, "WAF %s rule %s on %s%s from %s: %s", action, rule[0] ? rule : "?",
                  host ? host : "", uri ? uri : "?", client ? client : "?", msg ? msg : "");
    normlib_obs(a, "ip", client, "src");
    normlib_obs(a, "domain", host, "dst");
    if (host != NULL && uri != NULL) {
        char *url = xasprintf("https://%s%s", host, uri);

        normlib_obs(a, "url", url, "dst");
        free(url);
    }
    return 0;
}

static int
appgw_normalize(const cJSON *obj, const char *source, struct alert *a, char **errp)
{
    return strcmp(source, "azure.waf") == 0 ? waf(obj, a, errp) : access(obj, a, errp);
}

const struct norm_family norm_appgw_family = {
    "appgw",
    appgw_sources,
    appgw_detect,
    appgw_normalize,
};
