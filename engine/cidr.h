/* cidr.h: IPv4 and IPv6 addresses and CIDR blocks, for the address allow-lists and the
 * trusted proxies. An IPv4-mapped IPv6 address (::ffff:192.0.2.1, as a dual-stack
 * listener reports IPv4 peers) is taken as the IPv4 address. */
#ifndef KAGARI_CIDR_H
#define KAGARI_CIDR_H

#include "engine/util.h"

struct cidr {
    int v6;                 /* 0: IPv4 (addr[0..3]), 1: IPv6 */
    unsigned char addr[16]; /* network order */
    int bits;               /* prefix length */
};

/* "192.0.2.0/24", "2001:db8::/32", or a bare address (a /32 or /128). Bits set past
 * the prefix are refused ("192.0.2.1/24": did you mean 192.0.2.0/24?), as are prefixes
 * out of range and anything else, with a message. */
int cidr_parse(const char *s, struct cidr *out, char **errp) KG_WUR;
/* Parse an address alone (no prefix): 0 or -1. */
int cidr_parse_addr(const char *s, struct cidr *out) KG_WUR;
/* 1 when the address text addr lies in c, else 0 (an unparsable address is in none). */
int cidr_contains(const struct cidr *c, const char *addr);

#endif
