/* events.h: the event store's policy: each tenant's settings block (tenants.<id>.events:
 * retention and the rule that picks which records become alerts), the pruning of old
 * events on the loop (a bounded delete per pass, never a long one), and the playbooks'
 * `events` module (events.query, events.count: journaled effects). The rows themselves
 * are engine/store.c's; sources hand events to admit_events (engine/kagari.h). */
#ifndef KAGARI_EVENTS_H
#define KAGARI_EVENTS_H

#include <lua.h>

#include "engine/config.h"

#define EVENTS_RETENTION_DEFAULT (30 * 86400.0) /* seconds */
#define EVENTS_RULES_MAX 32
#define EVENTS_PRUNE_BATCH 2000 /* rows deleted per pass */
#define EVENTS_QUERY_LIMIT 100  /* rows events.query returns when not told */
#define EVENTS_QUERY_MAX 1000
#define EVENTS_COUNT_MAX 1000000

/* One compiled rule of tenants.<id>.events.alerts (see docs/operator-guide.md). */
struct events_rule {
    int kind;          /* EVENTS_RULE_ALERT, EVENTS_RULE_EVENT ("!"), EVENTS_RULE_DEFAULT */
    char source[65];   /* exact name, "prefix.*" or "*" */
    int min_severity;  /* -1: any */
    unsigned outcomes; /* bit per outcome (unknown, blocked, attempted, succeeded); 0: any */
    char category[65]; /* "" any */
};
#define EVENTS_RULE_ALERT 0
#define EVENTS_RULE_EVENT 1
#define EVENTS_RULE_DEFAULT 2

/* The settings block tenants.<id>.events. */
struct events_conf {
    double retention; /* seconds; 0 keeps events forever */
    char **alerts;    /* the rules as written */
    size_t nalerts;
    int set; /* alerts was given (an empty list: nothing becomes an alert) */
    struct events_rule rules[EVENTS_RULES_MAX]; /* compiled by the section's check */
    size_t nrules;
};

extern const struct config_section events_section;

/* Compile one rule's text; -1 with *errp naming what is wrong. */
int events_rule_parse(const char *text, struct events_rule *r, char **errp) KG_WUR;
/* 1 alert, 0 event: the first rule that matches decides (default: dflt); no rule
 * matching makes an event. conf NULL or without rules: dflt. */
int events_decide(const struct events_conf *conf, const char *source, int severity,
                  const char *outcome, const char *category, int dflt);

/* Make the settings block known (before the configuration is read). */
void events_register(void);
/* Start and stop the retention pruning of every open tenant, and its metrics. */
void events_start(void);
void events_stop(void);

/* The playbooks' `events` module. */
int events_luaopen(lua_State *L);

#endif
