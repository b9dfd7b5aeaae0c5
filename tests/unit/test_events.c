/* test_events.c: the tenants' alert rule (tenants.<id>.events.alerts): parsing, first match
 * decides, "!" keeps records as events, "default" defers to the source, and every
 * malformed rule is refused with a reason. */
#include "engine/events.h"

#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/util.h"
#include "tests/unit/test.h"

static void
conf_with(struct events_conf *c, const char *const *rules, size_t n)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < n; i++) {
        char *err = NULL;

        if (events_rule_parse(rules[i], &c->rules[i], &err) == -1) {
            T_FAIL_("%s: %s", rules[i], err);
            free(err);
        }
    }
    c->nrules = n;
}

static void
test_decide(void)
{
    static const char *const rules[] = {
        "!panos.system category=ha",
        "panos.traffic outcome=succeeded severity>=high",
        "panos.config outcome=blocked|attempted",
        "entra.*",
        "default",
    };
    struct events_conf c;

    conf_with(&c, rules, 5);
    /* the operational HA entry stays an event even if its source says alert */
    T_EQ_INT(events_decide(&c, "panos.system", SEV_CRITICAL, "unknown", "ha", 1), 0);
    T_EQ_INT(events_decide(&c, "panos.system", SEV_MEDIUM, "blocked", "auth", 1), 1);
    T_EQ_INT(events_decide(&c, "panos.traffic", SEV_HIGH, "succeeded", "end", 0), 1);
    T_EQ_INT(events_decide(&c, "panos.traffic", SEV_MEDIUM, "succeeded", "end", 0), 0);
    T_EQ_INT(events_decide(&c, "panos.traffic", SEV_HIGH, "blocked", "end", 0), 0);
    T_EQ_INT(events_decide(&c, "panos.config", SEV_INFO, "attempted", "edit", 0), 1);
    T_EQ_INT(events_decide(&c, "entra.signin", SEV_INFO, "succeeded", NULL, 0), 1);
    T_EQ_INT(events_decide(&c, "entraX.signin", SEV_INFO, "succeeded", NULL, 0), 0);
    T_EQ_INT(events_decide(&c, "panos.threat", SEV_LOW, "blocked", "url", 1), 1);
    /* no rule matches: an event */
    conf_with(&c, rules, 1);
    T_EQ_INT(events_decide(&c, "panos.threat", SEV_LOW, "blocked", "url", 1), 0);
    /* no rules at all: the source's default */
    T_EQ_INT(events_decide(NULL, "panos.threat", SEV_LOW, "blocked", "url", 1), 1);
    conf_with(&c, rules, 0);
    T_EQ_INT(events_decide(&c, "panos.traffic", SEV_LOW, "blocked", "end", 0), 0);
}

static void
test_refused(void)
{
    static const char *const bad[] = {
        "",
        "   ",
        "Panos.Threat",
        "panos.threat severity>=urgent",
        "panos.threat outcome=won",
        "panos.threat outcome=blocked|",
        "panos.threat colour=red",
        "default severity>=high",
        "panos.*.x",
        "!",
        "panos.threat category=",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct events_rule r;
        char *err = NULL;

        if (events_rule_parse(bad[i], &r, &err) == 0) {
            T_FAIL_("accepted: \"%s\"", bad[i]);
        } else {
            T_ASSERT(err != NULL && err[0] != '\0');
        }
        free(err);
    }
}

TEST_LIST = {
    { "decide", test_decide },
    { "refused", test_refused },
    { NULL, NULL },
};
