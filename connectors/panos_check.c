/* panos_check.c: the checks of every value the panos connector writes into a request
 * document or an xpath (addresses, subnets, tags, object names), and the guard list of
 * addresses a tenant never blocks. Pure functions: no I/O, no state. */
#include "connectors/panos_check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ---- */

int
panos_parse_net(const char *s, size_t len, int allow_cidr, char *out)
{
    char tmp[PANOS_NET_MAX];
    unsigned char bin[16];
    const char *slash;
    int fam, bits, maxbits;

    if (len == 0 || len >= sizeof(tmp) || memchr(s, '\0', len) != NULL) {
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        if (strchr("0123456789abcdefABCDEF:./", s[i]) == NULL) {
            return -1;
        }
    }
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    slash = strchr(tmp, '/');
    if (slash != NULL) {
        const char *d = slash + 1;

        if (!allow_cidr || *d == '\0' || strlen(d) > 3 || strchr(d, '/') != NULL) {
            return -1;
        }
        bits = 0;
        for (; *d != '\0'; d++) {
            if (*d < '0' || *d > '9') {
                return -1;
            }
            bits = bits * 10 + (*d - '0');
        }
        tmp[slash - tmp] = '\0';
    } else {
        bits = -1;
    }
    if (inet_pton(AF_INET, tmp, bin) == 1) {
        fam = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, tmp, bin) == 1) {
        fam = AF_INET6;
        maxbits = 128;
    } else {
        return -1;
    }
    if (bits > maxbits) {
        return -1;
    }
    if (bits >= 0) { /* the host bits must be zero: 10.1.2.3/8 is not a subnet */
        for (int i = bits; i < maxbits; i++) {
            if (bin[i / 8] & (0x80 >> (i % 8))) {
                return -1;
            }
        }
    }
    if (inet_ntop(fam, bin, out, PANOS_NET_MAX) == NULL) {
        return -1;
    }
    if (bits >= 0 && bits != maxbits) {
        size_t n = strlen(out);

        snprintf(out + n, PANOS_NET_MAX - n, "/%d", bits);
    }
    return 0;
}

/* Letters, digits, '-', '_', '.', and spaces that neither start nor end it: nothing
 * that could close an attribute, an element or an xpath literal. */
static int
valid_word(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max || memchr(s, '\0', len) != NULL || s[0] == ' ' || s[len - 1] == ' ') {
        return 0;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || ch == '.' || ch == ' ')) {
            return 0;
        }
    }
    return 1;
}

int
panos_valid_tag(const char *s, size_t len)
{
    return valid_word(s, len, PANOS_TAG_MAX);
}

int
panos_valid_name(const char *s, size_t len)
{
    unsigned char c0 = len > 0 ? (unsigned char)s[0] : 0;

    return valid_word(s, len, PANOS_NAME_MAX) &&
           ((c0 >= 'a' && c0 <= 'z') || (c0 >= 'A' && c0 <= 'Z') || (c0 >= '0' && c0 <= '9'));
}

/* ---- guardrails ---- */

struct panos_net {
    int fam; /* 4 or 6 */
    unsigned char addr[16];
    int bits;
    char text[PANOS_NET_MAX];
};

struct panos_guard {
    struct panos_net *v;
    size_t n;
};

/* A canonical address or subnet as bytes and prefix length. */
static int
net_bin(const char *text, struct panos_net *n)
{
    char tmp[PANOS_NET_MAX];
    char *slash;

    snprintf(tmp, sizeof(tmp), "%s", text);
    snprintf(n->text, sizeof(n->text), "%s", text);
    slash = strchr(tmp, '/');
    if (slash != NULL) {
        *slash = '\0';
    }
    memset(n->addr, 0, sizeof(n->addr));
    if (inet_pton(AF_INET, tmp, n->addr) == 1) {
        n->fam = 4;
        n->bits = 32;
    } else if (inet_pton(AF_INET6, tmp, n->addr) == 1) {
        n->fam = 6;
        n->bits = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        n->bits = atoi(slash + 1);
    }
    return 0;
}

struct panos_guard *
panos_guard_new(const char *list, char **errp)
{
    struct panos_guard *g = xcalloc(1, sizeof(*g));
    const char *p = list != NULL ? list : "";

    while (*p != '\0') {
        size_t len;
        char canon[PANOS_NET_MAX];

        p += strspn(p, ", \t\r\n");
        len = strcspn(p, ", \t\r\n");
        if (len == 0) {
            break;
        }
        if (panos_parse_net(p, len, 1, canon) == -1) {
            kg_err(errp,
                   "never_block: \"%.*s\" is not an IP address or a CIDR subnet (host bits "
                   "zero)",
                   (int)(len > 64 ? 64 : len), p);
            panos_guard_free(g);
            return NULL;
        }
        g->v = xrealloc(g->v, (g->n + 1) * sizeof(*g->v));
        if (net_bin(canon, &g->v[g->n]) == -1) {
            abort(); /* canonical text always parses */
        }
        g->n++;
        p += len;
    }
    return g;
}

void
panos_guard_free(struct panos_guard *g)
{
    if (g != NULL) {
        free(g->v);
        free(g);
    }
}

/* 1 when a and b share an address: the shorter prefix of the two matches both. */
static int
net_overlap(const struct panos_net *a, const struct panos_net *b)
{
    int bits = a->bits < b->bits ? a->bits : b->bits;

    if (a->fam != b->fam) {
        return 0;
    }
    for (int i = 0; i < bits; i++) {
        int m = 0x80 >> (i % 8);

        if ((a->addr[i / 8] & m) != (b->addr[i / 8] & m)) {
            return 0;
        }
    }
    return 1;
}

const char *
panos_guard_match(const struct panos_guard *g, const char *net)
{
    struct panos_net n;

    if (g == NULL || net_bin(net, &n) == -1) {
        return NULL;
    }
    for (size_t i = 0; i < g->n; i++) {
        if (net_overlap(&g->v[i], &n)) {
            return g->v[i].text;
        }
    }
    return NULL;
}
