/* plugin.c: the runtime list of connectors and sources. */
#include "engine/plugin.h"

#include <stdlib.h>
#include <string.h>

static const struct connector **connectors;
static size_t nconnectors;
static const struct source **sources;
static size_t nsources;
static const struct plugin_verb **verbs;
static size_t nverbs;
static const struct plugin_route **routes;
static size_t nroutes;
static size_t ninit; /* connectors whose init has run, in order */

void
plugin_add_connector(const struct connector *c)
{
    for (size_t i = 0; i < nconnectors; i++) {
        if (connectors[i] == c) {
            return;
        }
    }
    connectors = xrealloc(connectors, (nconnectors + 1) * sizeof(*connectors));
    connectors[nconnectors++] = c;
    if (c->config != NULL) {
        config_add_section(c->config);
    }
}

void
plugin_add_source(const struct source *s)
{
    for (size_t i = 0; i < nsources; i++) {
        if (sources[i] == s) {
            return;
        }
    }
    sources = xrealloc(sources, (nsources + 1) * sizeof(*sources));
    sources[nsources++] = s;
    if (s->config != NULL) {
        config_add_global_section(s->config);
    }
}

size_t
plugin_connectors(const struct connector *const **v)
{
    *v = connectors;
    return nconnectors;
}

size_t
plugin_sources(const struct source *const **v)
{
    *v = sources;
    return nsources;
}

void
plugin_add_verb(const struct plugin_verb *v)
{
    for (size_t i = 0; i < nverbs; i++) {
        if (verbs[i] == v) {
            return;
        }
    }
    verbs = xrealloc(verbs, (nverbs + 1) * sizeof(*verbs));
    verbs[nverbs++] = v;
}

void
plugin_add_route(const struct plugin_route *r)
{
    for (size_t i = 0; i < nroutes; i++) {
        if (routes[i] == r) {
            return;
        }
    }
    routes = xrealloc(routes, (nroutes + 1) * sizeof(*routes));
    routes[nroutes++] = r;
}

const struct plugin_route *
plugin_route(const char *path)
{
    for (size_t i = 0; i < nroutes; i++) {
        if (strncmp(path, routes[i]->prefix, strlen(routes[i]->prefix)) == 0) {
            return routes[i];
        }
    }
    return NULL;
}

size_t
plugin_verbs(const struct plugin_verb *const **v)
{
    *v = verbs;
    return nverbs;
}

const struct source *
plugin_source(const char *name)
{
    for (size_t i = 0; i < nsources; i++) {
        if (strcmp(sources[i]->name, name) == 0) {
            return sources[i];
        }
    }
    return NULL;
}

/* 1 when an earlier connector than i has the same function (init or shutdown). */
static int
seen_init(size_t i)
{
    for (size_t k = 0; k < i; k++) {
        if (connectors[k]->init == connectors[i]->init) {
            return 1;
        }
    }
    return 0;
}

static int
seen_shutdown(size_t i)
{
    for (size_t k = 0; k < i; k++) {
        if (connectors[k]->shutdown == connectors[i]->shutdown) {
            return 1;
        }
    }
    return 0;
}

int
plugin_init(const struct config *cfg, char **errp)
{
    for (ninit = 0; ninit < nconnectors; ninit++) {
        const struct connector *c = connectors[ninit];

        if (c->init != NULL && !seen_init(ninit) && c->init(cfg, errp) == -1) {
            plugin_shutdown();
            return -1;
        }
    }
    return 0;
}

void
plugin_shutdown(void)
{
    while (ninit > 0) {
        size_t i = --ninit;

        if (connectors[i]->shutdown != NULL && !seen_shutdown(i)) {
            connectors[i]->shutdown();
        }
    }
}
