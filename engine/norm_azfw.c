/* norm_azfw.c: Azure Firewall logs in both shapes: the legacy AzureDiagnostics
 * categories, whose facts are in the free text of properties.msg, and the
 * resource-specific AZFW* categories with one column per fact. Both give the same
 * fields, so one hit logged in both shapes gets one source_id. Rules: docs/sources.md. */
#include "engine/norm_azfw.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/normlib.h"

static const char *const azfw_sources[] = { "azure.firewall", NULL };

enum fw_kind { FW_NETWORK, FW_APPLICATION, FW_NAT, FW_THREAT_INTEL, FW_IDPS, FW_DNS, FW_OTHER };

static const char *const kind_names[] = { "network", "application", "nat",  "threat_intel",
                                          "idps",    "dns",         "other" };

/* One firewall hit, whichever shape it came in. Strings point into the record, into
 * the buffers here or into owned (copies made from the legacy text). */
struct fw_hit {
    enum fw_kind kind;
    char *owned[8];
    char proto_buf[16], src_buf[300], dst_buf[300], nat_buf[300];
    const char *proto, *src, *dst, *fqdn, *url, *action, *rule, *reason;
    const char *threat, *signature, *description, *classification, *nat_ip;
    char sport[16], dport[16], nat_port[16];
    int priority; /* IDPS: 1 High, 2 Medium, 3 Low; 0 none */
};

static const char *
azfw_detect(const cJSON *obj)
{
    const char *cat = normlib_str(obj, "category");

    if (cat == NULL) {
        return NULL;
    }
    if (normlib_starts(cat, "AZFW") || normlib_starts(cat, "AzureFirewall")) {
        return "azure.firewall";
    }
    return NULL;
}

/* Split "host:port" (also "host:" and a bare IPv6 address) at s, in place. */
static void
split_endpoint(char *s, char *port, size_t n)
{
    char *colon = strrchr(s, ':');

    port[0] = '\0';
    if (colon == NULL) {
        return;
    }
    if (s[0] == '[') { /* [v6]:port */
        char *close = strchr(s, ']');

        if (close != NULL) {
            *close = '\0';
            if (close[1] == ':') {
                snprintf(port, n, "%s", close + 2);
            }
            memmove(s, s + 1, strlen(s + 1) + 1);
        }
        return;
    }
    if (strchr(s, ':') != colon) {
        return; /* more than one colon: a bare IPv6 address */
    }
    *colon = '\0';
    snprintf(port, n, "%s", colon + 1);
}

/* A copy of the text after "key" up to the first ". " (or the end, without trailing
 * dots); NULL when key is absent. end_key, when given, ends the value instead
 * (descriptions hold dots). */
static char *
take(const char *text, const char *key, const char *end_key)
{
    const char *v = strstr(text, key), *e;

    if (v == NULL) {
        return NULL;
    }
    v += strlen(key);
    e = end_key != NULL ? strstr(v, end_key) : NULL;
    if (e == NULL) {
        e = strstr(v, ". ");
    }
    if (e == NULL) {
        e = v + strlen(v);
    }
    while (e > v && (e[-1] == '.' || e[-1] == ' ')) { /* "Action: Allow.." */
        e--;
    }
    return xstrndup(v, (size_t)(e - v));
}

/* Parse the legacy free text into h; the copies it makes are h->owned (free_hit).
 * Fails when the text has no "request from". */
static int
parse_msg(const char *msg, struct fw_hit *h, char **errp)
{
    static const char *const keys[][2] = {
        { "Action: ", NULL },         { "Url: ", NULL },       { "Rule: ", NULL },
        { "ThreatIntel: ", NULL },    { "Signature: ", NULL }, { "IDS: ", ". Priority: " },
        { "Classification: ", NULL }, { "Reason: ", NULL },
    };
    const char **slots[] = { &h->action,    &h->url,         &h->rule,           &h->threat,
                             &h->signature, &h->description, &h->classification, &h->reason };
    const char *from = strstr(msg, " request from ");
    const char *rest, *end, *to, *nat, *pr;
    size_t n;

    if (from == NULL) {
        return kg_err(errp, "properties.msg: no \"request from\" in the firewall's text");
    }
    /* The protocol: the first word ("HTTPS", "TCP", "ICMP Type=8" gives "ICMP"). */
    while (*msg == ' ') {
        msg++;
    }
    n = strcspn(msg, " ");
    snprintf(h->proto_buf, sizeof(h->proto_buf), "%.*s", (int)n, msg);
    h->proto = h->proto_buf;
    /* The source runs to " to ", or to ". " when there is no destination. */
    rest = from + strlen(" request from ");
    to = strstr(rest, " to ");
    end = strstr(rest, ". ");
    if (end == NULL) {
        end = rest + strlen(rest);
    }
    if (to != NULL && to < end) {
        snprintf(h->src_buf, sizeof(h->src_buf), "%.*s", (int)(to - rest), rest);
        rest = to + 4;
        end = strstr(rest, ". ");
        if (end == NULL) {
            end = rest + strlen(rest);
        }
        nat = strstr(rest, " was DNAT'ed to ");
        if (nat != NULL && nat < end) {
            const char *tip = nat + strlen(" was DNAT'ed to ");

            snprintf(h->dst_buf, sizeof(h->dst_buf), "%.*s", (int)(nat - rest), rest);
            snprintf(h->nat_buf, sizeof(h->nat_buf), "%.*s", (int)(end - tip), tip);
            split_endpoint(h->nat_buf, h->nat_port, sizeof(h->nat_port));
            h->nat_ip = h->nat_buf;
        } else {
            snprintf(h->dst_buf, sizeof(h->dst_buf), "%.*s", (int)(end - rest), rest);
        }
    } else {
        snprintf(h->src_buf, sizeof(h->src_buf), "%.*s", (int)(end - rest), rest);
    }
    split_endpoint(h->src_buf, h->sport, sizeof(h->sport));
    split_endpoint(h->dst_buf, h->dport, sizeof(h->dport));
    h->src = h->src_buf;
    h->dst = h->dst_buf;
    for (size_t i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
        h->owned[i] = take(from, keys[i][0], keys[i][1]);
        *slots[i] = h->owned[i];
    }
    if (h->description != NULL && (pr = strstr(from, "Priority: ")) != NULL) {
        h->priority = atoi(pr + strlen("Priority: "));
    }
    return 0;
}

static void
free_hit(struct fw_hit *h)
{
    for (size_t i = 0; i < sizeof(h->owned) / sizeof(h->owned[0]); i++) {
        free(h->owned[i]);
    }
}

static enum fw_kind
legacy_kind(const char *op, const char *cat)
{
    if (op == NULL) {
        return normlib_is(cat, "AzureFirewallDnsProxy") ? FW_DNS : FW_OTHER;
    }
    if (normlib_is(op, "AzureFirewallThreatIntelLog")) {
        return FW_THREAT_INTEL;
    }
    if (normlib_is(op, "AzureFirewallIDSLog")) {
        return FW_IDPS;
    }
    if (normlib_is(op, "AzureFirewallNatRuleLog")) {
        return FW_NAT;
    }
    if (normlib_is(op, "AzureFirewallApplicationRuleLog")) {
        return FW_APPLICATION;
    }
    if (normlib_is(op, "AzureFirewallNetworkRuleLog")) {
        return FW_NETWORK;
    }
    return normlib_is(cat, "AzureFirewallDnsProxy") ? FW_DNS : FW_OTHER;
}

static enum fw_kind
structured_kind(const char *cat)
{
    static const struct {
        const char *cat;
        enum fw_kind kind;
    } map[] = {
        { "AZFWNetworkRule", FW_NETWORK }, { "AZFWApplicationRule", FW_APPLICATION },
        { "AZFWNatRule", FW_NAT },         { "AZFWThreatIntel", FW_THREAT_INTEL },
        { "AZFWIdpsSignature", FW_IDPS },  { "AZFWDnsQuery", FW_DNS },
    };

    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (normlib_is(cat, map[i].cat)) {
            return map[i].kind;
        }
    }
    return FW_OTHER;
}

static void
structured(const cJSON *p, struct fw_hit *h)
{
    double d;

    h->proto = normlib_str(p, "Protocol");
    h->src = normlib_str(p, "SourceIp");
    h->dst = normlib_str(p, "DestinationIp");
    h->fqdn = normlib_str(p, "Fqdn");
    h->url = normlib_str(p, "TargetUrl");
    h->action = normlib_str(p, "Action");
    h->rule = normlib_str(p, "Rule");
    h->reason = normlib_str(p, "ActionReason");
    h->threat = normlib_str(p, "ThreatDescription");
    h->description = normlib_str(p, "Description");
    h->classification = normlib_str(p, "Category");
    h->nat_ip = normlib_str(p, "TranslatedIp");
    normlib_text(p, "SourcePort", h->sport, sizeof(h->sport));
    normlib_text(p, "DestinationPort", h->dport, sizeof(h->dport));
    normlib_text(p, "TranslatedPort", h->nat_port, sizeof(h->nat_port));
    if (normlib_num(p, "Severity", &d) == 0 && d >= 1 && d <= 3) {
        h->priority = (int)d;
    }
}

static int
azfw_normalize(const cJSON *obj, const char *source, struct alert *a, char **errp)
{
    static const char *const times[] = { "time", "TimeGenerated", NULL };
    const char *cat = normlib_str(obj, "category");
    const cJSON *p = normlib_obj(obj, "properties");
    struct fw_hit h;
    char sig[32] = "", when[32], dstport[300];
    const char *dst, *parts[9];
    int sev = SEV_INFO, blocked, passed;
    int rc = -1;

    (void)source;
    memset(&h, 0, sizeof(h));
    if (p == NULL) {
        return kg_err(errp, "properties: expected an object");
    }
    if (normlib_set_time(a, obj, times, errp) == -1) {
        return -1;
    }
    if (normlib_starts(cat, "AZFW")) {
        h.kind = structured_kind(cat);
        structured(p, &h);
        normlib_text(p, "SignatureId", sig, sizeof(sig));
        h.signature = sig[0] != '\0' ? sig : NULL;
    } else {
        const char *msg = normlib_str(p, "msg");

        h.kind = legacy_kind(normlib_str(obj, "operationName"), cat);
        if (msg == NULL) {
            return kg_err(errp, "properties.msg: required (the firewall's text)");
        }
        if (h.kind != FW_DNS && h.kind != FW_OTHER && parse_msg(msg, &h, errp) == -1) {
            free_hit(&h);
            return -1;
        }
    }
    /* A host name in the destination slot (application rules) is the FQDN. */
    dst = h.dst != NULL && h.dst[0] != '\0' ? h.dst : NULL;
    if (dst != NULL && h.fqdn == NULL && strspn(dst, "0123456789.:abcdefABCDEF") != strlen(dst)) {
        h.fqdn = dst;
        dst = NULL;
    }
    blocked = normlib_is(h.action, "Deny") || normlib_is(h.action, "Drop") ||
              normlib_is(h.action, "Reset");
    passed = normlib_is(h.action, "Allow") || normlib_is(h.action, "Alert") || h.kind == FW_NAT;
    switch (h.kind) {
    case FW_THREAT_INTEL:
        sev = blocked ? SEV_LOW : SEV_HIGH;
        break;
    case FW_IDPS:
        sev = h.priority == 1 ? SEV_HIGH : h.priority == 2 ? SEV_MEDIUM : SEV_LOW;
        if (blocked && sev > SEV_LOW) {
            sev = SEV_LOW;
        }
        break;
    case FW_NETWORK:
    case FW_APPLICATION:
        sev = blocked ? SEV_LOW : SEV_INFO;
        break;
    default:
        sev = SEV_INFO;
        break;
    }
    normlib_outcome(a, blocked ? "blocked" : passed ? "succeeded" : "unknown");
    a->severity = sev;
    a->cls =
        h.kind == FW_THREAT_INTEL || h.kind == FW_IDPS ? ALERT_CLASS_ALERT : normlib_log_class(sev);
    normlib_category(a, kind_names[h.kind]);
    if (h.priority != 0) {
        char pr[8];

        snprintf(pr, sizeof(pr), "%d", h.priority);
        normlib_vendor_severity(a, pr);
    }
    snprintf(dstport, sizeof(dstport), "%s", h.fqdn != NULL ? h.fqdn : dst != NULL ? dst : "");
    snprintf(when, sizeof(when), "%lld", (long long)a->time_ms);
    parts[0] = when;
    parts[1] = kind_names[h.kind];
    parts[2] = h.src;
    parts[3] = h.sport;
    parts[4] = dstport;
    parts[5] = h.dport;
    parts[6] = h.action;
    parts[7] = h.rule;
    parts[8] = h.signature;
    {
        /* The action's case differs between shapes: the key uses lower case. */
        char act[32] = "";

        for (size_t i = 0; h.action != NULL && h.action[i] != '\0' && i < sizeof(act) - 1; i++) {
            act[i] = (char)tolower((unsigned char)h.action[i]);
        }
        parts[6] = act;
        if (h.kind == FW_DNS || h.kind == FW_OTHER) {
            const char *msg = normlib_str(p, "msg");

            parts[2] = msg != NULL ? msg : normlib_str(obj, "category");
        }
        normlib_set_id_parts(a, parts, 9);
    }
    if (h.kind == FW_IDPS) {
        normlib_title(a, "IDPS %s: %s from %s to %s:%s", h.action ? h.action : "?",
                      h.description ? h.description
                      : h.signature ? h.signature
                                    : "?",
                      h.src ? h.src : "?", dstport, h.dport);
    } else if (h.kind == FW_THREAT_INTEL) {
        normlib_title(a, "Threat intel %s: %s from %s to %s:%s", h.action ? h.action : "?",
                      h.threat ? h.threat : "?", h.src ? h.src : "?", dstport, h.dport);
    } else if (h.kind == FW_DNS || h.kind == FW_OTHER) {
        normlib_title(a, "Firewall %s record", cat ? cat : "?");
    } else {
        normlib_title(a, "Firewall %s %s %s from %s:%s to %s:%s%s%s", kind_names[h.kind],
                      h.action ? h.action : "DNAT", h.proto ? h.proto : "?", h.src ? h.src : "?",
                      h.sport, dstport, h.dport, h.rule ? " rule " : "", h.rule ? h.rule : "");
    }
    normlib_obs(a, "ip", h.src, "src");
    normlib_obs(a, "ip", dst, "dst");
    normlib_obs(a, "domain", h.fqdn, "dst");
    if (h.url != NULL) {
        normlib_url(a, h.url, "dst");
    }
    normlib_obs(a, "ip", h.nat_ip, "nat");
    rc = 0;
    free_hit(&h);
    return rc;
}

const struct norm_family norm_azfw_family = {
    "azfw",
    azfw_sources,
    azfw_detect,
    azfw_normalize,
};
