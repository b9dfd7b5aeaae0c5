/* panos.h: the playbooks' `panos` module: a Palo Alto Networks firewall through the
 * PAN-OS XML API (reference: connectors.md section 7): User-ID IP-to-tag registration
 * for blocks that need no commit (batched across runs), address objects and groups,
 * commits with their jobs polled, guardrails per tenant, and the block list served to
 * firewalls that pull it (an External Dynamic List). */
#ifndef KAGARI_PANOS_H
#define KAGARI_PANOS_H

#include <stddef.h>

#include "engine/kagari.h"

extern const struct connector panos_connector;
/* `kagari panos keygen --tenant ID`: the firewall's API key for a tenant, encrypted. */
extern const struct plugin_verb panos_keygen_verb;
/* GET /edl/<tenant>[/<tag>] on the intake listener: the tenant's block list (EDL). */
extern const struct plugin_route panos_edl_route;

/* The checks every value passes before it goes into a request document or an xpath;
 * exported for the unit tests. Each takes the value with its length (a NUL inside fails).
 *
 * panos_parse_net: an IPv4 or IPv6 address, or with allow_cidr a CIDR subnet whose host
 * bits are zero; 0 with its canonical text in out (at least PANOS_NET_MAX bytes: an
 * address as inet_ntop writes it, a subnet as "<network>/<bits>"), -1 otherwise. */
#define PANOS_NET_MAX 64
int panos_parse_net(const char *s, size_t len, int allow_cidr, char *out);
/* A tag: 1 to 127 characters of letters, digits, '-', '_', '.', and inner spaces. */
int panos_valid_tag(const char *s, size_t len);
/* An object name: 1 to 63 characters of letters, digits, '-', '_', '.', and inner
 * spaces, starting with a letter or digit. */
int panos_valid_name(const char *s, size_t len);

/* Address ranges a tenant never blocks (its never_block setting plus the firewall's own
 * address): parsed from a list separated by commas or white space. */
struct panos_guard;
struct panos_guard *panos_guard_new(const char *list, char **errp);
void panos_guard_free(struct panos_guard *g);
/* The guard entry (its text) that net (a canonical panos_parse_net text) overlaps, or
 * NULL: a subnet is refused when any of its addresses is guarded. */
const char *panos_guard_match(const struct panos_guard *g, const char *net);

#endif
