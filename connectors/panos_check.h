/* panos_check.h: what the panos connector accepts as an address, a subnet, a tag or an
 * object name (anything else could change the structure of a request document or an
 * xpath, and is refused before anything is journaled), and the guard list of addresses
 * a tenant never blocks. */
#ifndef KAGARI_PANOS_CHECK_H
#define KAGARI_PANOS_CHECK_H

#include <stddef.h>

#include "engine/kagari.h"

/* Each check takes the value with its length (a NUL inside fails).
 *
 * panos_parse_net: an IPv4 or IPv6 address, or with allow_cidr a CIDR subnet whose host
 * bits are zero; 0 with its canonical text in out (at least PANOS_NET_MAX bytes: an
 * address as inet_ntop writes it, a subnet as "<network>/<bits>"), -1 otherwise. */
#define PANOS_NET_MAX 64
#define PANOS_TAG_MAX 127
#define PANOS_NAME_MAX 63
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
