/* cidr.c: address and CIDR block parsing and matching. */
#include "engine/cidr.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int
cidr_parse_addr(const char *s, struct cidr *out)
{
    memset(out, 0, sizeof(*out));
    if (s == NULL) {
        return -1;
    }
    if (strchr(s, ':') == NULL) {
        if (inet_pton(AF_INET, s, out->addr) != 1) {
            return -1;
        }
        out->bits = 32;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out->addr) != 1) {
        return -1;
    }
    if (memcmp(out->addr, v4_mapped, sizeof(v4_mapped)) == 0) {
        memmove(out->addr, out->addr + 12, 4);
        memset(out->addr + 4, 0, 12);
        out->bits = 32;
        return 0;
    }
    out->v6 = 1;
    out->bits = 128;
    return 0;
}

int
cidr_parse(const char *s, struct cidr *out, char **errp)
{
    char text[64];
    const char *slash;
    int max, bits;

    memset(out, 0, sizeof(*out));
    if (s == NULL || strlen(s) >= sizeof(text)) {
        return kg_err(errp, "not an address or CIDR block");
    }
    slash = strchr(s, '/');
    snprintf(text, sizeof(text), "%.*s", slash ? (int)(slash - s) : (int)strlen(s), s);
    if (cidr_parse_addr(text, out) == -1) {
        return kg_err(errp, "\"%s\": not an IPv4 or IPv6 address or CIDR block", s);
    }
    max = out->bits;
    if (slash == NULL) {
        return 0;
    }
    {
        char *end;
        long v = strtol(slash + 1, &end, 10);

        if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || v < 0 || v > max ||
            (max == 32 && out->v6 == 0 && strchr(text, ':') != NULL)) {
            return kg_err(errp, "\"%s\": prefix length must be 0 to %d", s,
                          strchr(text, ':') ? 128 : 32);
        }
        bits = (int)v;
    }
    for (int i = bits; i < max; i++) {
        if (out->addr[i / 8] & (0x80 >> (i % 8))) {
            return kg_err(errp, "\"%s\": address bits set past the /%d prefix", s, bits);
        }
    }
    out->bits = bits;
    return 0;
}

int
cidr_contains(const struct cidr *c, const char *addr)
{
    struct cidr a;
    int full, rest;

    if (cidr_parse_addr(addr, &a) == -1 || a.v6 != c->v6) {
        return 0;
    }
    full = c->bits / 8;
    rest = c->bits % 8;
    if (memcmp(a.addr, c->addr, (size_t)full) != 0) {
        return 0;
    }
    if (rest > 0) {
        unsigned char mask = (unsigned char)(0xff << (8 - rest));

        return (a.addr[full] & mask) == (c->addr[full] & mask);
    }
    return 1;
}
