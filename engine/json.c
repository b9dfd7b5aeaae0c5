/* json.c: strict validation of untrusted JSON before cJSON sees it, and small helpers. */
#include "engine/json.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Longest number token we accept. cJSON copies at most 63 bytes of a number into a
 * local buffer and would misparse anything longer, so we refuse it up front. */
#define JSON_NUMBER_MAX 63

/* Objects with more members than this are checked for duplicate keys by sorting
 * instead of comparing every pair (an attacker controls the member count). */
#define JSON_DUP_PAIRWISE 8

/* Longest key we quote in an error message; the rest is elided. */
#define JSON_MSG_KEY_MAX 64

/* The validator's state: the text, the position and the stack of open containers
 * ('{' or '['). The stack is bounded by the depth limit, so there is no recursion. */
struct json_lexer {
    const unsigned char *p;
    size_t len;
    size_t pos;
    int depth;
    int max_depth;
    char stack[CJSON_NESTING_LIMIT];
    char **errp;
};

/* Record an error at the current position. Always returns -1. */
static int
lex_fail(struct json_lexer *lx, size_t at, const char *what)
{
    return kg_err(lx->errp, "json: %s at byte offset %zu", what, at);
}

static void
lex_skip_ws(struct json_lexer *lx)
{
    while (lx->pos < lx->len) {
        unsigned char c = lx->p[lx->pos];

        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') {
            break;
        }
        lx->pos++;
    }
}

/* Describe an unexpected byte (or the end of input) at the current position. */
static int
lex_unexpected(struct json_lexer *lx, const char *expected)
{
    char msg[128];

    if (lx->pos >= lx->len) {
        snprintf(msg, sizeof(msg), "unexpected end of input, expected %s", expected);
    } else if (lx->p[lx->pos] == 0) {
        snprintf(msg, sizeof(msg), "raw NUL byte");
    } else if (lx->p[lx->pos] >= 0x20 && lx->p[lx->pos] < 0x7f) {
        snprintf(msg, sizeof(msg), "unexpected '%c', expected %s", lx->p[lx->pos], expected);
    } else {
        snprintf(msg, sizeof(msg), "unexpected byte 0x%02x, expected %s", lx->p[lx->pos], expected);
    }
    return lex_fail(lx, lx->pos, msg);
}

static int
is_cont(unsigned char c)
{
    return (c & 0xc0) == 0x80;
}

/* Check the multi-byte UTF-8 sequence starting at p (p[0] >= 0x80), with avail bytes
 * available. Returns NULL and sets *n to the sequence length when it is valid, else a
 * description of the problem. Overlong forms, UTF-16 surrogates (U+D800..U+DFFF) and code
 * points above U+10FFFF are refused, as RFC 3629 requires. */
static const char *
utf8_check(const unsigned char *p, size_t avail, size_t *n)
{
    unsigned char c = p[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* bounds of the second byte */

    if (c < 0xc0) {
        return "invalid UTF-8 (unexpected continuation byte)";
    }
    if (c < 0xc2) {
        return "invalid UTF-8 (overlong encoding)";
    }
    if (c < 0xe0) {
        need = 2;
    } else if (c < 0xf0) {
        need = 3;
        if (c == 0xe0) {
            lo = 0xa0; /* below that is an overlong form */
        } else if (c == 0xed) {
            hi = 0x9f; /* above that encodes a surrogate */
        }
    } else if (c < 0xf5) {
        need = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else if (c < 0xf8) {
        return "invalid UTF-8 (code point above U+10FFFF)";
    } else {
        return "invalid UTF-8 (invalid lead byte)";
    }
    if (avail < 2 || !is_cont(p[1])) {
        return "invalid UTF-8 (truncated sequence)";
    }
    if (p[1] < lo) {
        return "invalid UTF-8 (overlong encoding)";
    }
    if (p[1] > hi) {
        return c == 0xed ? "invalid UTF-8 (encoded UTF-16 surrogate)"
                         : "invalid UTF-8 (code point above U+10FFFF)";
    }
    for (size_t i = 2; i < need; i++) {
        if (i >= avail || !is_cont(p[i])) {
            return "invalid UTF-8 (truncated sequence)";
        }
    }
    *n = need;
    return NULL;
}

/* Read 4 hex digits at p into *cp. Returns 0, or -1 when they are not all hex. */
static int
hex4(const unsigned char *p, unsigned *cp)
{
    unsigned v = 0;

    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];

        v <<= 4;
        if (c >= '0' && c <= '9') {
            v |= (unsigned)(c - '0');
        } else if (c >= 'a' && c <= 'f') {
            v |= (unsigned)(c - 'a' + 10);
        } else if (c >= 'A' && c <= 'F') {
            v |= (unsigned)(c - 'A' + 10);
        } else {
            return -1;
        }
    }
    *cp = v;
    return 0;
}

/* Validate a string token; lx->pos is at the opening quote and ends after the closing
 * one. Refuses raw control characters, invalid UTF-8, bad escapes, "\u0000" (cJSON would
 * end the C string there) and surrogate escapes that are not a high+low pair. */
static int
lex_string(struct json_lexer *lx)
{
    size_t start = lx->pos;

    lx->pos++;
    for (;;) {
        unsigned char c;

        /* The common case first: a run of printable ASCII other than '"' and '\\'. */
        while (lx->pos < lx->len) {
            c = lx->p[lx->pos];
            if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
                break;
            }
            lx->pos++;
        }
        if (lx->pos >= lx->len) {
            return lex_fail(lx, start, "unterminated string");
        }
        c = lx->p[lx->pos];
        if (c == '"') {
            lx->pos++;
            return 0;
        }
        if (c == 0) {
            return lex_fail(lx, lx->pos, "raw NUL byte in string");
        }
        if (c < 0x20) {
            char msg[64];

            snprintf(msg, sizeof(msg), "raw control character 0x%02x in string", c);
            return lex_fail(lx, lx->pos, msg);
        }
        if (c >= 0x80) {
            size_t n = 0;
            const char *bad = utf8_check(lx->p + lx->pos, lx->len - lx->pos, &n);

            if (bad != NULL) {
                return lex_fail(lx, lx->pos, bad);
            }
            lx->pos += n;
            continue;
        }
        if (c != '\\') {
            lx->pos++;
            continue;
        }
        /* An escape. */
        if (lx->pos + 1 >= lx->len) {
            return lex_fail(lx, start, "unterminated string");
        }
        c = lx->p[lx->pos + 1];
        if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
            c == 't') {
            lx->pos += 2;
            continue;
        }
        if (c != 'u') {
            return lex_fail(lx, lx->pos, "invalid escape sequence");
        } else {
            unsigned cp = 0, lo = 0;
            size_t at = lx->pos;

            if (lx->len - lx->pos < 6 || hex4(lx->p + lx->pos + 2, &cp) == -1) {
                return lex_fail(lx, at, "invalid \\u escape (expected 4 hex digits)");
            }
            lx->pos += 6;
            if (cp == 0) {
                return lex_fail(lx, at, "\\u0000 escape not allowed");
            }
            if (cp >= 0xdc00 && cp <= 0xdfff) {
                return lex_fail(lx, at, "unpaired surrogate escape (low half without high)");
            }
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (lx->len - lx->pos < 6 || lx->p[lx->pos] != '\\' || lx->p[lx->pos + 1] != 'u' ||
                    hex4(lx->p + lx->pos + 2, &lo) == -1 || lo < 0xdc00 || lo > 0xdfff) {
                    return lex_fail(lx, at, "unpaired surrogate escape (high half without low)");
                }
                lx->pos += 6;
            }
        }
    }
}

static int
is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Validate a number token per RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
 * Also refuses tokens cJSON cannot parse faithfully (too long) and magnitudes that
 * overflow a double (cJSON would store infinity and print it as null). */
static int
lex_number(struct json_lexer *lx, double *value)
{
    size_t start = lx->pos;
    const unsigned char *p = lx->p;
    size_t len = lx->len;
    char tmp[JSON_NUMBER_MAX + 1];
    double v;

    if (lx->pos < len && p[lx->pos] == '-') {
        lx->pos++;
    }
    if (lx->pos >= len || !is_digit(p[lx->pos])) {
        return lex_fail(lx, start, "invalid number (expected a digit)");
    }
    if (p[lx->pos] == '0') {
        lx->pos++;
        if (lx->pos < len && is_digit(p[lx->pos])) {
            return lex_fail(lx, start, "invalid number (leading zero)");
        }
    } else {
        while (lx->pos < len && is_digit(p[lx->pos])) {
            lx->pos++;
        }
    }
    if (lx->pos < len && p[lx->pos] == '.') {
        lx->pos++;
        if (lx->pos >= len || !is_digit(p[lx->pos])) {
            return lex_fail(lx, start, "invalid number (expected a digit after '.')");
        }
        while (lx->pos < len && is_digit(p[lx->pos])) {
            lx->pos++;
        }
    }
    if (lx->pos < len && (p[lx->pos] == 'e' || p[lx->pos] == 'E')) {
        lx->pos++;
        if (lx->pos < len && (p[lx->pos] == '+' || p[lx->pos] == '-')) {
            lx->pos++;
        }
        if (lx->pos >= len || !is_digit(p[lx->pos])) {
            return lex_fail(lx, start, "invalid number (expected a digit in the exponent)");
        }
        while (lx->pos < len && is_digit(p[lx->pos])) {
            lx->pos++;
        }
    }
    if (lx->pos - start > JSON_NUMBER_MAX) {
        return lex_fail(lx, start, "number longer than 63 bytes");
    }
    memcpy(tmp, p + start, lx->pos - start);
    tmp[lx->pos - start] = '\0';
    v = strtod(tmp, NULL);
    if (isinf(v)) {
        return lex_fail(lx, start, "number out of range");
    }
    *value = v;
    return 0;
}

/* Validate one of the literals true, false, null. */
static int
lex_literal(struct json_lexer *lx)
{
    static const char *const words[] = { "true", "false", "null" };

    for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        size_t n = strlen(words[i]);

        if (lx->len - lx->pos >= n && memcmp(lx->p + lx->pos, words[i], n) == 0) {
            lx->pos += n;
            return 0;
        }
    }
    return lex_fail(lx, lx->pos, "invalid literal (expected true, false or null)");
}

/* Validate an object key and the ':' after it; lx->pos is at the key's first byte. */
static int
lex_key(struct json_lexer *lx)
{
    if (lx->pos >= lx->len || lx->p[lx->pos] != '"') {
        return lex_unexpected(lx, "a string key");
    }
    if (lex_string(lx) == -1) {
        return -1;
    }
    lex_skip_ws(lx);
    if (lx->pos >= lx->len || lx->p[lx->pos] != ':') {
        return lex_unexpected(lx, "':'");
    }
    lx->pos++;
    lex_skip_ws(lx);
    return 0;
}

/* The single pass over the text. Containers are tracked on lx->stack, so a deeply
 * nested input costs one byte per level and is refused as soon as it passes max_depth. */
static int
lex_run(struct json_lexer *lx)
{
    lex_skip_ws(lx);
    if (lx->pos >= lx->len) {
        return kg_err(lx->errp, "json: empty input");
    }
    if (lx->len - lx->pos >= 3 && memcmp(lx->p + lx->pos, "\xef\xbb\xbf", 3) == 0) {
        return lex_fail(lx, lx->pos, "byte order mark not allowed");
    }
    for (;;) {
        unsigned char c;

        /* A value is expected at lx->pos. */
        if (lx->pos >= lx->len) {
            return lex_unexpected(lx, "a value");
        }
        c = lx->p[lx->pos];
        if (c == '{' || c == '[') {
            if (lx->depth >= lx->max_depth) {
                char msg[64];

                snprintf(msg, sizeof(msg), "nesting deeper than %d", lx->max_depth);
                return lex_fail(lx, lx->pos, msg);
            }
            lx->stack[lx->depth++] = (char)c;
            lx->pos++;
            lex_skip_ws(lx);
            if (lx->pos < lx->len && lx->p[lx->pos] == (c == '{' ? '}' : ']')) {
                lx->pos++;
                lx->depth--;
            } else if (c == '{') {
                if (lex_key(lx) == -1) {
                    return -1;
                }
                continue;
            } else {
                continue;
            }
        } else if (c == '"') {
            if (lex_string(lx) == -1) {
                return -1;
            }
        } else if (c == '-' || is_digit(c)) {
            double v;

            if (lex_number(lx, &v) == -1) {
                return -1;
            }
        } else if (c == 't' || c == 'f' || c == 'n') {
            if (lex_literal(lx) == -1) {
                return -1;
            }
        } else {
            return lex_unexpected(lx, "a value");
        }

        /* A value ended: close containers or move to the next member. */
        for (;;) {
            char top, close;

            lex_skip_ws(lx);
            if (lx->depth == 0) {
                if (lx->pos < lx->len) {
                    return lex_unexpected(lx, "end of input after the value");
                }
                return 0;
            }
            top = lx->stack[lx->depth - 1];
            close = top == '{' ? '}' : ']';
            if (lx->pos < lx->len && lx->p[lx->pos] == close) {
                lx->pos++;
                lx->depth--;
                continue;
            }
            if (lx->pos < lx->len && lx->p[lx->pos] == ',') {
                lx->pos++;
                lex_skip_ws(lx);
                if (top == '{' && lex_key(lx) == -1) {
                    return -1;
                }
                break;
            }
            return lex_unexpected(lx, top == '{' ? "',' or '}'" : "',' or ']'");
        }
    }
}

/* Append one path segment for key to path (for error messages): .key for plain
 * identifiers, ["..."] otherwise. Over the buffer's cap the path is simply cut. */
static void
path_push_key(struct buf *path, const char *key)
{
    size_t n = strlen(key);
    int plain = n > 0 && n <= JSON_MSG_KEY_MAX;

    for (size_t i = 0; plain && i < n; i++) {
        unsigned char c = (unsigned char)key[i];

        plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '@';
    }
    if (plain) {
        (void)!buf_printf(path, ".%s", key);
        return;
    }
    if (n > JSON_MSG_KEY_MAX) {
        n = JSON_MSG_KEY_MAX;
        while (n > 0 && is_cont((unsigned char)key[n])) {
            n--;
        }
    }
    (void)!buf_puts(path, "[");
    (void)!buf_json_string(path, key, n);
    (void)!buf_puts(path, "]");
}

/* Return a key that occurs twice among obj's members, or NULL. Small objects compare
 * pairwise; larger ones go through an open-addressing hash set of their keys,
 * so an object of n keys costs O(n), not O(n log n) string comparisons: big records
 * (a sign-in has some 60 members) are the intake's common case. */
static const char *
find_duplicate(const cJSON *obj)
{
    const char *small[256];
    const char **set = small;
    const char *dup = NULL;
    size_t n = 0, cap = 16;
    const cJSON *it;

    cJSON_ArrayForEach(it, obj)
    {
        n++;
    }
    if (n <= JSON_DUP_PAIRWISE) {
        for (const cJSON *a = obj->child; a != NULL; a = a->next) {
            for (const cJSON *b = a->next; b != NULL; b = b->next) {
                if (strcmp(a->string, b->string) == 0) {
                    return a->string;
                }
            }
        }
        return NULL;
    }
    while (cap < 2 * n) {
        cap *= 2;
    }
    if (cap > sizeof(small) / sizeof(small[0])) {
        set = xcalloc(cap, sizeof(*set));
    } else {
        memset(small, 0, cap * sizeof(small[0]));
    }
    cJSON_ArrayForEach(it, obj)
    {
        size_t slot, len = strlen(it->string);
        uint64_t h = 1469598103934665603ULL ^ len;
        const char *k = it->string;

        /* FNV-1a over 8-byte words (the last one zero-padded), then mixed: a key costs a
         * few multiplications, not one per byte. */
        for (; len > 0; k += len < 8 ? len : 8, len -= len < 8 ? len : 8) {
            uint64_t w = 0;

            memcpy(&w, k, len < 8 ? len : 8);
            h = (h ^ w) * 1099511628211ULL;
        }
        h ^= h >> 29;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 32;
        for (slot = (size_t)h & (cap - 1); set[slot] != NULL; slot = (slot + 1) & (cap - 1)) {
            if (strcmp(set[slot], it->string) == 0) {
                dup = it->string;
                break;
            }
        }
        if (dup != NULL) {
            break;
        }
        set[slot] = it->string;
    }
    if (set != small) {
        free(set);
    }
    return dup;
}

/* Does any object in the tree (depth already bounded by the validator) repeat a key? */
static int
has_duplicates(const cJSON *item)
{
    const cJSON *child;

    if (cJSON_IsObject(item)) {
        if (find_duplicate(item) != NULL) {
            return 1;
        }
    } else if (!cJSON_IsArray(item)) {
        return 0;
    }
    for (child = item->child; child != NULL; child = child->next) {
        if ((cJSON_IsObject(child) || cJSON_IsArray(child)) && has_duplicates(child)) {
            return 1;
        }
    }
    return 0;
}

/* Refuse objects with duplicate keys anywhere in the tree. Keys are compared after
 * escape decoding, so "a" and "\u0061" collide as they should. The recursion is bounded
 * by the depth the validator already enforced. On error, path holds the object's path. */
static int
check_duplicates(const cJSON *item, struct buf *path, char **errp)
{
    const cJSON *child;
    size_t mark = path->len;
    int i = 0;

    if (cJSON_IsObject(item)) {
        const char *dup = find_duplicate(item);

        if (dup != NULL) {
            struct buf k;
            size_t n = strlen(dup);
            int rc;

            if (n > JSON_MSG_KEY_MAX) {
                n = JSON_MSG_KEY_MAX;
                while (n > 0 && is_cont((unsigned char)dup[n])) {
                    n--;
                }
            }
            buf_init(&k, 0);
            (void)!buf_json_string(&k, dup, n);
            rc = kg_err(errp, "json: duplicate key %s in object at %s", k.data, path->data);
            buf_free(&k);
            return rc;
        }
    } else if (!cJSON_IsArray(item)) {
        return 0;
    }
    cJSON_ArrayForEach(child, item)
    {
        if (!cJSON_IsObject(child) && !cJSON_IsArray(child)) {
            i++;
            continue;
        }
        if (cJSON_IsObject(item)) {
            path_push_key(path, child->string);
        } else {
            (void)!buf_printf(path, "[%d]", i);
        }
        if (check_duplicates(child, path, errp) == -1) {
            return -1;
        }
        path->len = mark;
        if (path->data != NULL) {
            path->data[mark] = '\0';
        }
        i++;
    }
    return 0;
}

/* Validate first, then let cJSON build the tree from the same bytes (with the length,
 * since the text need not be NUL-terminated), then refuse duplicate keys. */
int
json_parse_strict(const char *text, size_t len, int max_depth, cJSON **out, char **errp)
{
    struct json_lexer *lx;
    cJSON *tree;
    const char *end = NULL;
    struct buf path;
    int rc = -1;

    *out = NULL;
    if (text == NULL || len == 0) {
        return kg_err(errp, "json: empty input");
    }
    lx = xmalloc(sizeof(*lx));
    lx->p = (const unsigned char *)text;
    lx->len = len;
    lx->pos = 0;
    lx->depth = 0;
    lx->max_depth = max_depth < 0 ? 0 : max_depth;
    if (lx->max_depth > CJSON_NESTING_LIMIT) {
        lx->max_depth = CJSON_NESTING_LIMIT; /* cJSON's own limit */
    }
    lx->errp = errp;
    if (lex_run(lx) == -1) {
        free(lx);
        return -1;
    }
    free(lx);

    tree = cJSON_ParseWithLengthOpts(text, len, &end, 0);
    if (tree == NULL) {
        return kg_err(errp, "json: parser failed (out of memory?)");
    }
    if (end == NULL || end < text || (size_t)(end - text) > len) {
        cJSON_Delete(tree);
        return kg_err(errp, "json: parser stopped at an unexpected position");
    }
    buf_init(&path, 1024);
    (void)!buf_puts(&path, "$");
    /* The quick walk finds whether there is a duplicate; only then does the slow one
     * build the path that names it. */
    if (has_duplicates(tree) && check_duplicates(tree, &path, errp) == -1) {
        cJSON_Delete(tree);
        goto out;
    }
    *out = tree;
    rc = 0;
out:
    buf_free(&path);
    return rc;
}

cJSON *
json_get(const cJSON *obj, const char *key)
{
    if (!cJSON_IsObject(obj) || key == NULL) {
        return NULL;
    }
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

const char *
json_get_string(const cJSON *obj, const char *key)
{
    const cJSON *it = json_get(obj, key);

    return cJSON_IsString(it) ? it->valuestring : NULL;
}

char *
json_print(const cJSON *item)
{
    char *s = cJSON_PrintUnformatted(item);

    if (s == NULL) {
        fprintf(stderr, "level=err event=oom where=json_print\n");
        abort();
    }
    return s;
}

/* Scanners over text that json_parse_strict accepted: each returns where the white
 * space, string or value at p ends. */
static const char *
span_skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) {
        p++;
    }
    return p;
}

static const char *
span_skip_string(const char *p, const char *end)
{
    /* memchr to each quote; it closes the string unless an odd run of backslashes
     * escapes it. */
    for (p++; p < end;) {
        const char *q = memchr(p, '"', (size_t)(end - p));
        const char *b;

        if (q == NULL) {
            return end;
        }
        for (b = q; b > p && b[-1] == '\\'; b--) {
        }
        if (((q - b) & 1) == 0) {
            return q + 1;
        }
        p = q + 1;
    }
    return end;
}

static const char *
span_skip_value(const char *p, const char *end)
{
    int depth = 0;

    if (p >= end) {
        return end;
    }
    if (*p == '"') {
        return span_skip_string(p, end);
    }
    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != ']' && *p != '}' && *p != ' ' && *p != '\t' &&
               *p != '\n' && *p != '\r') {
            p++;
        }
        return p;
    }
    while (p < end) {
        if (*p == '"') {
            p = span_skip_string(p, end);
            continue;
        }
        if (*p == '{' || *p == '[') {
            depth++;
        } else if (*p == '}' || *p == ']') {
            if (--depth == 0) {
                return p + 1;
            }
        }
        p++;
    }
    return end;
}

/* The spans of the elements of the array starting at p ('['). */
static long
span_elements(const char *text, const char *p, const char *end, struct json_span **out)
{
    struct json_span *v = NULL;
    size_t n = 0, cap = 0;

    p = span_skip_ws(p + 1, end);
    while (p < end && *p != ']') {
        const char *e = span_skip_value(p, end);

        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n].off = (size_t)(p - text);
        v[n].len = (size_t)(e - p);
        n++;
        p = span_skip_ws(e, end);
        if (p < end && *p == ',') {
            p = span_skip_ws(p + 1, end);
        }
    }
    *out = v;
    return (long)n;
}

long
json_array_spans(const char *text, size_t len, const char *key, struct json_span **out)
{
    const char *p = text, *end = text + len;
    size_t klen = key != NULL ? strlen(key) : 0;

    *out = NULL;
    p = span_skip_ws(p, end);
    if (key == NULL) {
        return p < end && *p == '[' ? span_elements(text, p, end, out) : -1;
    }
    if (p >= end || *p != '{') {
        return -1;
    }
    p = span_skip_ws(p + 1, end);
    while (p < end && *p == '"') {
        const char *k = p + 1, *ke = span_skip_string(p, end) - 1;
        int match = (size_t)(ke - k) == klen && memcmp(k, key, klen) == 0;

        p = span_skip_ws(ke + 1, end);
        if (p >= end || *p != ':') {
            return -1;
        }
        p = span_skip_ws(p + 1, end);
        if (match) {
            return p < end && *p == '[' ? span_elements(text, p, end, out) : -1;
        }
        p = span_skip_ws(span_skip_value(p, end), end);
        if (p < end && *p == ',') {
            p = span_skip_ws(p + 1, end);
        }
    }
    return -1;
}

/* ---- documents parsed in one pass into an arena ----
 *
 * The intake's path: a body of thousands of records is validated and built in a single
 * pass over its bytes (the validator's own token checks, so both accept exactly the same
 * texts), every node and string carved from a few large blocks, duplicate keys caught as
 * each object closes by hashes taken while its keys were copied, and the whole freed at
 * once. json_parse_strict's three passes and one malloc per node and per string cost
 * several times more on large bodies. Any failure is handed to json_parse_strict, whose
 * error message (with its byte offset or the duplicate key's path) is the one returned. */

#define DOC_BLOCK_MIN (64u * 1024) /* bytes of the smallest arena block */
#define DOC_KEYS_PAIRWISE 8        /* up to this many keys an object is checked pair by pair */

struct doc_block {
    struct doc_block *next;
    size_t size, used;
    max_align_t data[];
};

struct json_doc {
    cJSON *root;
    cJSON *tree; /* a tree of json_parse_strict (when the one pass declined), or NULL */
    struct doc_block *blocks;
    size_t hint; /* the size of the next block */
    /* The spans of the elements of the root when it is an array, and of each array that
     * is a member of the root object, in order (an array's are contiguous). */
    struct json_span *spans;
    const cJSON **span_of; /* the array of each span */
    size_t nspans, capspans;
    int open_span; /* spans[nspans - 1] waits for its end */
};

/* One key of an open object: its node and the hash of its decoded bytes. */
struct doc_key {
    uint64_t h;
    const cJSON *item;
};

/* The builder's state: the document, the open containers and their keys. */
struct doc_build {
    struct json_lexer lx;
    struct json_doc *d;
    char *copy;    /* the text copied into the arena: the strings are decoded in it */
    cJSON **open;  /* the open containers, outermost first (max_depth of them) */
    cJSON **last;  /* the last child of each, or NULL */
    size_t *kbase; /* where each object's keys start in keys */
    struct doc_key *keys;
    size_t nkeys, capkeys;
    uint32_t *slots; /* the hash set of a large object's keys */
    size_t capslots;
};

static void *
doc_alloc(struct json_doc *d, size_t n)
{
    struct doc_block *b = d->blocks;

    n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
    if (b == NULL || b->size - b->used < n) {
        size_t size = d->hint > n ? d->hint : n;

        b = xmalloc(sizeof(*b) + size);
        b->size = size;
        b->used = 0;
        b->next = d->blocks;
        d->blocks = b;
        d->hint = size * 2; /* few blocks however large the body */
    }
    b->used += n;
    return (char *)b->data + b->used - n;
}

/* Append code point cp as UTF-8 at q; returns the end. */
static char *
utf8_put(char *q, unsigned cp)
{
    if (cp < 0x80) {
        *q++ = (char)cp;
    } else if (cp < 0x800) {
        *q++ = (char)(0xc0 | (cp >> 6));
        *q++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *q++ = (char)(0xe0 | (cp >> 12));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *q++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *q++ = (char)(0xf0 | (cp >> 18));
        *q++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *q++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *q++ = (char)(0x80 | (cp & 0x3f));
    }
    return q;
}

/* Where the plain run of a string starting at p[i] ends: the first byte below 0x20,
 * above 0x7f, '"' or '\\' at or after i, or len. Sixteen bytes at a time with SSE2 (every
 * x86-64 has it), else eight at a time in a 64-bit word. */
static size_t
doc_plain_end(const unsigned char *p, size_t i, size_t len)
{
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\'), sp = _mm_set1_epi8(0x20);

    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        /* Signed: bytes of 0x80 and above are negative, so "below 0x20" takes them too. */
        __m128i m = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bs)),
                                 _mm_cmplt_epi8(v, sp));
        unsigned mask = (unsigned)_mm_movemask_epi8(m);

        if (mask != 0) {
            return i + (size_t)__builtin_ctz(mask);
        }
        i += 16;
    }
#else
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;

    /* A byte is zero in w ^ (c * ones) exactly where it equals c; (x - ones) & ~x & highs
     * is not 0 when x has a zero byte, and likewise (w - 0x20 * ones) & ~w & highs when w
     * has a byte below 0x20 (a borrow may flag later bytes too: the byte loop below finds
     * the first). */
    while (len - i >= 8) {
        uint64_t w, q, b;

        memcpy(&w, p + i, 8);
        q = w ^ (ones * '"');
        b = w ^ (ones * '\\');
        if (((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b) | w) & highs) != 0) {
            break;
        }
        i += 8;
    }
#endif
    while (i < len) {
        unsigned char c = p[i];

        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') {
            break;
        }
        i++;
    }
    return i;
}

/* Validate the string at the lexer's position (lex_string's checks) and return it decoded
 * and NUL-terminated, in place in the document's copy of the text: at the same offset as
 * in the text, ending where its closing quote was (decoding never lengthens a string). So
 * a string costs no allocation, and a plain one (the most: no escape) one scan and a NUL.
 * *h, when not NULL, gets the hash of the decoded bytes (FNV-1a). NULL when invalid. */
static char *
doc_string(struct doc_build *b, uint64_t *h)
{
    size_t from = b->lx.pos + 1, i;
    const char *src = (const char *)b->lx.p + from, *end;
    char *out = b->copy + from, *q;
    size_t n;

    i = doc_plain_end(b->lx.p, from, b->lx.len);
    if (i < b->lx.len && b->lx.p[i] == '"') {
        b->lx.pos = i + 1;
        n = i - from;
        q = out + n;
    } else {
        /* Not plain: lex_string checks the rest from the byte before the first special
         * one (it skips the byte it starts on, as it would the opening quote; its
         * messages are not used: a failure is reported by json_parse_strict). */
        b->lx.pos = i - 1;
        if (lex_string(&b->lx) == -1) {
            return NULL;
        }
        end = (const char *)b->lx.p + b->lx.pos - 1; /* the closing quote */
        n = (size_t)(end - src);
        if (memchr(src + (i - from), '\\', (size_t)(end - src) - (i - from)) == NULL) {
            q = out + n; /* the copy holds it as it is */
        } else {
            q = out + (i - from);
            src += i - from;
            while (src < end) {
                unsigned cp, lo;

                if (*src != '\\') {
                    *q++ = *src++;
                    continue;
                }
                switch (src[1]) {
                case 'b':
                    *q++ = '\b';
                    break;
                case 'f':
                    *q++ = '\f';
                    break;
                case 'n':
                    *q++ = '\n';
                    break;
                case 'r':
                    *q++ = '\r';
                    break;
                case 't':
                    *q++ = '\t';
                    break;
                case 'u':
                    (void)hex4((const unsigned char *)src + 2, &cp);
                    if (cp >= 0xd800 && cp <= 0xdbff) { /* a pair: lex_string checked it */
                        (void)hex4((const unsigned char *)src + 8, &lo);
                        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                        src += 6;
                    }
                    q = utf8_put(q, cp);
                    src += 6;
                    continue;
                default: /* '"', '\\', '/' */
                    *q++ = src[1];
                    break;
                }
                src += 2;
            }
        }
    }
    *q = '\0';
    if (h != NULL) {
        /* FNV-1a over 8-byte words (the last one zero-padded), then mixed: a key costs a
         * multiplication per eight bytes, not one per byte. */
        uint64_t v = 1469598103934665603ULL ^ (uint64_t)(q - out);

        for (const char *k = out; k < q; k += 8) {
            uint64_t w = 0;

            memcpy(&w, k, (size_t)(q - k) < 8 ? (size_t)(q - k) : 8);
            v = (v ^ w) * 1099511628211ULL;
        }
        v ^= v >> 29;
        v *= 0xbf58476d1ce4e5b9ULL;
        *h = v ^ (v >> 32);
    }
    return out;
}

/* Does the object whose keys are keys[from..nkeys) repeat one? */
static int
doc_has_duplicate(struct doc_build *b, size_t from)
{
    size_t n = b->nkeys - from, cap = 16;
    const struct doc_key *k = b->keys + from;

    if (n <= DOC_KEYS_PAIRWISE) {
        for (size_t i = 0; i < n; i++) {
            for (size_t j = i + 1; j < n; j++) {
                if (k[i].h == k[j].h && strcmp(k[i].item->string, k[j].item->string) == 0) {
                    return 1;
                }
            }
        }
        return 0;
    }
    while (cap < 2 * n) {
        cap *= 2;
    }
    if (cap > b->capslots) {
        free(b->slots);
        b->slots = xmalloc(cap * sizeof(*b->slots));
        b->capslots = cap;
    }
    memset(b->slots, 0xff, cap * sizeof(*b->slots));
    for (size_t i = 0; i < n; i++) {
        size_t slot = (size_t)(k[i].h ^ (k[i].h >> 29)) & (cap - 1);

        for (; b->slots[slot] != UINT32_MAX; slot = (slot + 1) & (cap - 1)) {
            const struct doc_key *o = &k[b->slots[slot]];

            if (o->h == k[i].h && strcmp(o->item->string, k[i].item->string) == 0) {
                return 1;
            }
        }
        b->slots[slot] = (uint32_t)i;
    }
    return 0;
}

/* Read an object key and the ':' after it into *key, noting it for the duplicate check
 * of the innermost open object. -1 when the text is not valid there. */
static int
doc_key(struct doc_build *b, char **key)
{
    uint64_t h;

    if (b->lx.pos >= b->lx.len || b->lx.p[b->lx.pos] != '"' || (*key = doc_string(b, &h)) == NULL) {
        return -1;
    }
    lex_skip_ws(&b->lx);
    if (b->lx.pos >= b->lx.len || b->lx.p[b->lx.pos] != ':') {
        return -1;
    }
    b->lx.pos++;
    lex_skip_ws(&b->lx);
    if (b->nkeys == b->capkeys) {
        b->capkeys = b->capkeys ? b->capkeys * 2 : 256;
        b->keys = xrealloc(b->keys, b->capkeys * sizeof(*b->keys));
    }
    b->keys[b->nkeys].h = h;
    b->keys[b->nkeys].item = NULL; /* set when the member's node is made */
    b->nkeys++;
    return 0;
}

/* Make a node for the value at the lexer's position, a member of the innermost open
 * container (named key in an object). */
static cJSON *
doc_node(struct doc_build *b, char *key)
{
    cJSON *n = doc_alloc(b->d, sizeof(*n));
    int depth = b->lx.depth;

    memset(n, 0, sizeof(*n));
    if (depth > 0) {
        cJSON *parent = b->open[depth - 1];

        /* An element of the root array, or of an array member of the root object: note
         * where its bytes start (doc_run notes where they end). */
        if (parent->type == cJSON_Array &&
            (depth == 1 || (depth == 2 && b->open[0]->type == cJSON_Object))) {
            struct json_doc *d = b->d;

            if (d->nspans == d->capspans) {
                d->capspans = d->capspans ? d->capspans * 2 : 64;
                d->spans = xrealloc(d->spans, d->capspans * sizeof(*d->spans));
                d->span_of = xrealloc(d->span_of, d->capspans * sizeof(*d->span_of));
            }
            d->span_of[d->nspans] = parent;
            d->spans[d->nspans].off = b->lx.pos;
            d->spans[d->nspans].len = 0;
            d->nspans++;
            d->open_span = 1;
        }

        if (b->last[depth - 1] == NULL) {
            parent->child = n;
        } else {
            b->last[depth - 1]->next = n;
            n->prev = b->last[depth - 1];
        }
        parent->child->prev = n; /* cJSON keeps the last child in the first's prev */
        b->last[depth - 1] = n;
        if (key != NULL) {
            n->string = key;
            b->keys[b->nkeys - 1].item = n;
        }
    }
    return n;
}

/* The one pass of lex_run, building the tree as it goes. 0 with b->d->root, or -1. */
static int
doc_run(struct doc_build *b)
{
    struct json_lexer *lx = &b->lx;
    char *key = NULL;

    lex_skip_ws(lx);
    if (lx->pos >= lx->len ||
        (lx->len - lx->pos >= 3 && memcmp(lx->p + lx->pos, "\xef\xbb\xbf", 3) == 0)) {
        return -1;
    }
    for (;;) {
        unsigned char c;
        cJSON *n;

        if (lx->pos >= lx->len) {
            return -1;
        }
        c = lx->p[lx->pos];
        n = doc_node(b, key);
        key = NULL;
        if (b->d->root == NULL) {
            b->d->root = n;
        }
        if (c == '{' || c == '[') {
            if (lx->depth >= lx->max_depth) {
                return -1;
            }
            n->type = c == '{' ? cJSON_Object : cJSON_Array;
            b->open[lx->depth] = n;
            b->last[lx->depth] = NULL;
            b->kbase[lx->depth] = b->nkeys;
            lx->stack[lx->depth++] = (char)c;
            lx->pos++;
            lex_skip_ws(lx);
            if (lx->pos < lx->len && lx->p[lx->pos] == (c == '{' ? '}' : ']')) {
                lx->pos++;
                lx->depth--;
            } else if (c == '{') {
                if (doc_key(b, &key) == -1) {
                    return -1;
                }
                continue;
            } else {
                continue;
            }
        } else if (c == '"') {
            n->type = cJSON_String;
            if ((n->valuestring = doc_string(b, NULL)) == NULL) {
                return -1;
            }
        } else if (c == '-' || is_digit(c)) {
            double v;

            if (lex_number(lx, &v) == -1) {
                return -1;
            }
            n->type = cJSON_Number;
            n->valuedouble = v;
            n->valueint = v >= INT_MAX ? INT_MAX : v <= (double)INT_MIN ? INT_MIN : (int)v;
        } else if (c == 't' || c == 'f' || c == 'n') {
            if (lex_literal(lx) == -1) {
                return -1;
            }
            n->type = c == 't' ? cJSON_True : c == 'f' ? cJSON_False : cJSON_NULL;
            n->valueint = c == 't';
        } else {
            return -1;
        }
        /* A value ended: close containers or move to the next member. */
        for (;;) {
            char top, close;

            if (b->d->open_span && lx->depth <= 2 && lx->depth > 0 &&
                b->open[lx->depth - 1] == b->d->span_of[b->d->nspans - 1]) {
                /* the element whose start doc_node noted ends here */
                struct json_span *sp = &b->d->spans[b->d->nspans - 1];

                sp->len = lx->pos - sp->off;
                b->d->open_span = 0;
            }
            lex_skip_ws(lx);
            if (lx->depth == 0) {
                return lx->pos < lx->len ? -1 : 0;
            }
            top = lx->stack[lx->depth - 1];
            close = top == '{' ? '}' : ']';
            if (lx->pos < lx->len && lx->p[lx->pos] == close) {
                lx->pos++;
                lx->depth--;
                if (top == '{') {
                    if (doc_has_duplicate(b, b->kbase[lx->depth])) {
                        return -1;
                    }
                    b->nkeys = b->kbase[lx->depth];
                }
                continue;
            }
            if (lx->pos < lx->len && lx->p[lx->pos] == ',') {
                lx->pos++;
                lex_skip_ws(lx);
                if (top == '{' && doc_key(b, &key) == -1) {
                    return -1;
                }
                break;
            }
            return -1;
        }
    }
}

int
json_doc_parse(const char *text, size_t len, int max_depth, struct json_doc **out, char **errp)
{
    struct json_doc *d = xcalloc(1, sizeof(*d));
    struct doc_build *b;
    int rc;

    *out = NULL;
    if (text == NULL || len == 0) {
        free(d);
        return kg_err(errp, "json: empty input");
    }
    /* The copy of the text takes its length, and the nodes about twice that. */
    d->hint = 3 * len > DOC_BLOCK_MIN ? 3 * len : DOC_BLOCK_MIN;
    b = xcalloc(1, sizeof(*b));
    b->d = d;
    b->lx.p = (const unsigned char *)text;
    b->lx.len = len;
    b->lx.max_depth = max_depth < 0 ? 0 : max_depth;
    if (b->lx.max_depth > CJSON_NESTING_LIMIT) {
        b->lx.max_depth = CJSON_NESTING_LIMIT;
    }
    b->lx.errp = NULL;
    b->copy = doc_alloc(d, len + 1);
    b->copy[len] = '\0';
    memcpy(b->copy, text, len);
    b->open = xmalloc(((size_t)b->lx.max_depth + 1) * sizeof(*b->open));
    b->last = xmalloc(((size_t)b->lx.max_depth + 1) * sizeof(*b->last));
    b->kbase = xmalloc(((size_t)b->lx.max_depth + 1) * sizeof(*b->kbase));
    rc = doc_run(b);
    free(b->open);
    free(b->last);
    free(b->kbase);
    free(b->keys);
    free(b->slots);
    free(b);
    if (rc == -1) {
        /* Declined: the strict parser says why (or, should it accept, its tree is used). */
        json_doc_free(d);
        d = xcalloc(1, sizeof(*d));
        if (json_parse_strict(text, len, max_depth, &d->tree, errp) == -1) {
            free(d);
            return -1;
        }
        d->root = d->tree;
    }
    *out = d;
    return 0;
}

const cJSON *
json_doc_root(const struct json_doc *d)
{
    return d->root;
}

long
json_doc_spans(const struct json_doc *d, const cJSON *array, const struct json_span **out)
{
    size_t i = 0, n = 0;

    *out = NULL;
    if (d->tree != NULL) {
        return -1; /* built by json_parse_strict: no spans noted */
    }
    while (i < d->nspans && d->span_of[i] != array) {
        i++;
    }
    if (i == d->nspans) {
        return cJSON_IsArray(array) && array->child == NULL ? 0 : -1;
    }
    while (i + n < d->nspans && d->span_of[i + n] == array) {
        n++;
    }
    *out = &d->spans[i];
    return (long)n;
}

int
json_doc_in_arena(const struct json_doc *d)
{
    return d->tree == NULL;
}

void
json_doc_free(struct json_doc *d)
{
    if (d == NULL) {
        return;
    }
    while (d->blocks != NULL) {
        struct doc_block *next = d->blocks->next;

        free(d->blocks);
        d->blocks = next;
    }
    free(d->spans);
    free(d->span_of);
    cJSON_Delete(d->tree);
    free(d);
}
