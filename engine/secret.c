/* secret.c: connector credentials at rest (AES-256-GCM under a key file) and the registry
 * of live secrets that secret_redact() masks in logs and run journals. */
#include "engine/secret.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "engine/log.h"

#define SECRET_PREFIX "enc:v1:"
#define SECRET_PREFIX_LEN 7
#define SECRET_KEY_LEN 32
#define SECRET_NONCE_LEN 12
#define SECRET_TAG_LEN 16
/* The format version is authenticated along with the ciphertext, so a value cannot be
 * replayed under another (future) format's rules. */
#define SECRET_AAD "kagari-secret-v1"
/* Registered secrets shorter than this are not masked: masking "admin" or "1234" would
 * mangle ordinary text far more often than it would hide a real credential. */
#define SECRET_MIN_REDACT 8
/* The registry holds the secrets in use: configured credentials and the cached access
 * tokens (oauth.c unregisters a token when it replaces it). The cap is a safety net: when
 * it is hit the least recently registered entry goes, and registering a value again makes
 * it the most recent. */
#define SECRET_REGISTRY_MAX 512

static unsigned char key[SECRET_KEY_LEN];
static int key_loaded;

struct secret_entry {
    char *value;
    size_t len;
};

/* Oldest first. */
static struct secret_entry *registry;
static size_t nregistry;

/* ---- base64 (standard alphabet, with '=' padding) ---- */

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Encode n bytes as standard base64 with padding; malloc'd, NUL-terminated. */
static char *
b64_encode(const unsigned char *p, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
    size_t i;

    for (i = 0; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8 | p[i + 2];

        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = b64chars[(v >> 6) & 63];
        *o++ = b64chars[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)p[i] << 16;

        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = '=';
        *o++ = '=';
    } else if (n - i == 2) {
        unsigned v = (unsigned)p[i] << 16 | (unsigned)p[i + 1] << 8;

        *o++ = b64chars[v >> 18];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = b64chars[(v >> 6) & 63];
        *o++ = '=';
    }
    *o = '\0';
    return out;
}

static int
b64_value(char c)
{
    const char *p = c ? strchr(b64chars, c) : NULL;

    return p ? (int)(p - b64chars) : -1;
}

/* Strict decoder: length a multiple of 4, only the alphabet, padding only at the end and
 * unused bits zero (so each value has exactly one encoding). Returns a malloc'd buffer
 * and its length in *outlen, or NULL when s is not canonical base64. */
static unsigned char *
b64_decode(const char *s, size_t *outlen)
{
    size_t n = strlen(s), pad = 0, j = 0;
    unsigned char *out;

    if (n == 0 || n % 4 != 0) {
        return NULL;
    }
    if (s[n - 1] == '=') {
        pad = s[n - 2] == '=' ? 2 : 1;
    }
    out = xmalloc(n / 4 * 3);
    for (size_t i = 0; i < n; i += 4) {
        int v[4];
        int last = i + 4 == n;

        for (int k = 0; k < 4; k++) {
            if (last && k >= 4 - (int)pad) {
                v[k] = 0;
            } else if ((v[k] = b64_value(s[i + k])) < 0) {
                goto bad;
            }
        }
        unsigned w = (unsigned)v[0] << 18 | (unsigned)v[1] << 12 | (unsigned)v[2] << 6 | v[3];

        out[j++] = (unsigned char)(w >> 16);
        if (!last || pad < 2) {
            out[j++] = (unsigned char)(w >> 8);
        } else if ((w >> 8) & 0xff) {
            goto bad;
        }
        if (!last || pad < 1) {
            out[j++] = (unsigned char)w;
        } else if (w & 0xff) {
            goto bad;
        }
    }
    *outlen = j;
    return out;
bad:
    OPENSSL_cleanse(out, n / 4 * 3);
    free(out);
    return NULL;
}

/* ---- key file ---- */

static int
hex_value(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* fsync the directory holding path so that a newly created file survives a crash.
 * Best effort: a failure here is not worth refusing a key that is already on disk. */
static void
sync_parent_dir(const char *path)
{
    char *copy = xstrdup(path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(copy);
}

/* Write 32 random bytes as 64 lowercase hex characters and a newline to a new file at
 * path, mode 0600. O_EXCL makes an existing file (or a symlink planted there) an error
 * rather than something to overwrite. A partly written file is removed. */
int
secret_keyfile_create(const char *path, char **errp)
{
    unsigned char raw[SECRET_KEY_LEN];
    char hex[2 * SECRET_KEY_LEN + 2];
    size_t off = 0, n = 2 * SECRET_KEY_LEN + 1;
    int fd, rc = -1;

    if (util_random(raw, sizeof(raw)) == -1) {
        return kg_err(errp, "key file %s: no random bytes available", path);
    }
    util_hex(raw, sizeof(raw), hex);
    hex[2 * SECRET_KEY_LEN] = '\n';
    hex[2 * SECRET_KEY_LEN + 1] = '\0';
    OPENSSL_cleanse(raw, sizeof(raw));

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST) {
            kg_err(errp, "key file %s already exists: refusing to overwrite it", path);
        } else {
            kg_err(errp, "key file %s: %s", path, strerror(errno));
        }
        goto out;
    }
    /* The umask can only take bits away, but be explicit about the result. */
    if (fchmod(fd, 0600) == -1) {
        kg_err(errp, "key file %s: chmod: %s", path, strerror(errno));
        goto fail;
    }
    while (off < n) {
        ssize_t w = write(fd, hex + off, n - off);

        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            kg_err(errp, "key file %s: write: %s", path, strerror(w < 0 ? errno : EIO));
            goto fail;
        }
        off += (size_t)w;
    }
    if (fsync(fd) == -1) {
        kg_err(errp, "key file %s: fsync: %s", path, strerror(errno));
        goto fail;
    }
    if (close(fd) == -1) {
        fd = -1;
        kg_err(errp, "key file %s: close: %s", path, strerror(errno));
        goto fail;
    }
    fd = -1;
    sync_parent_dir(path);
    rc = 0;
    goto out;
fail:
    if (fd >= 0) {
        close(fd);
    }
    unlink(path);
out:
    OPENSSL_cleanse(hex, sizeof(hex));
    return rc;
}

/* Load the key from path. The file must be a regular file that neither group nor others
 * can access (the key decrypts every connector credential), holding exactly 64 hex
 * characters, optionally followed by a newline. The previous key, if any, stays loaded
 * when this fails. */
int
secret_load_key(const char *path, char **errp)
{
    char text[2 * SECRET_KEY_LEN + 4];
    unsigned char raw[SECRET_KEY_LEN];
    struct stat st;
    size_t len = 0;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return kg_err(errp, "key file %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) == -1) {
        kg_err(errp, "key file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        kg_err(errp, "key file %s: not a regular file", path);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        kg_err(errp,
               "key file %s has mode %04o: it must not be accessible by group or others "
               "(chmod 600 it)",
               path, (unsigned)(st.st_mode & 07777));
        goto out;
    }
    /* Read one byte more than the longest valid content so that trailing junk shows. */
    while (len < sizeof(text) - 1) {
        ssize_t r = read(fd, text + len, sizeof(text) - 1 - len);

        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r < 0) {
            kg_err(errp, "key file %s: read: %s", path, strerror(errno));
            goto out;
        }
        if (r == 0) {
            break;
        }
        len += (size_t)r;
    }
    if (len == 2 * SECRET_KEY_LEN + 1 && text[len - 1] == '\n') {
        len--;
    }
    if (len != 2 * SECRET_KEY_LEN) {
        kg_err(errp, "key file %s: expected 64 hex characters and a newline", path);
        goto out;
    }
    for (size_t i = 0; i < SECRET_KEY_LEN; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);

        if (hi < 0 || lo < 0) {
            kg_err(errp, "key file %s: expected 64 hex characters and a newline", path);
            goto out;
        }
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    memcpy(key, raw, sizeof(key));
    key_loaded = 1;
    rc = 0;
out:
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(raw, sizeof(raw));
    close(fd);
    return rc;
}

void
secret_unload_key(void)
{
    OPENSSL_cleanse(key, sizeof(key));
    key_loaded = 0;
}

/* ---- encryption ---- */

/* AES-256-GCM under the loaded key with a fresh random 96-bit nonce. The result is
 * "enc:v1:" + base64(nonce || ciphertext || tag), standard base64 with '=' padding.
 * Returns a malloc'd string, or NULL with *errp when no key is loaded or the cipher
 * fails. */
char *
secret_encrypt(const char *plain, char **errp)
{
    size_t n = strlen(plain), total = SECRET_NONCE_LEN + n + SECRET_TAG_LEN;
    unsigned char *blob = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    char *b64 = NULL, *out = NULL;
    int len = 0;

    if (!key_loaded) {
        kg_err(errp, "secret: no key loaded");
        return NULL;
    }
    if (n > 1024 * 1024) {
        kg_err(errp, "secret: value too long");
        return NULL;
    }
    blob = xmalloc(total);
    if (util_random(blob, SECRET_NONCE_LEN) == -1) {
        kg_err(errp, "secret: no random bytes available");
        goto out;
    }
    ctx = EVP_CIPHER_CTX_new();
    if (ctx == NULL || EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, blob) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, (const unsigned char *)SECRET_AAD,
                          (int)strlen(SECRET_AAD)) != 1 ||
        EVP_EncryptUpdate(ctx, blob + SECRET_NONCE_LEN, &len, (const unsigned char *)plain,
                          (int)n) != 1 ||
        EVP_EncryptFinal_ex(ctx, blob + SECRET_NONCE_LEN + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, SECRET_TAG_LEN,
                            blob + SECRET_NONCE_LEN + n) != 1) {
        kg_err(errp, "secret: encryption failed");
        goto out;
    }
    b64 = b64_encode(blob, total);
    out = xasprintf("%s%s", SECRET_PREFIX, b64);
out:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(blob, total);
    free(blob);
    free(b64);
    return out;
}

/* See secret.h. The decrypted text must not contain NUL bytes (it is used as a C
 * string). Every intermediate buffer is wiped. */
char *
secret_decrypt(const char *value, char **errp)
{
    unsigned char *blob = NULL;
    EVP_CIPHER_CTX *ctx = NULL;
    char *plain = NULL;
    size_t blen = 0, n;
    int len = 0, ok;

    if (strncmp(value, SECRET_PREFIX, SECRET_PREFIX_LEN) != 0) {
        return xstrdup(value);
    }
    if (!key_loaded) {
        kg_err(errp, "secret: an encrypted value needs the key file, and none is loaded");
        return NULL;
    }
    blob = b64_decode(value + SECRET_PREFIX_LEN, &blen);
    if (blob == NULL || blen < SECRET_NONCE_LEN + SECRET_TAG_LEN) {
        kg_err(errp, "secret: malformed encrypted value");
        goto out;
    }
    n = blen - SECRET_NONCE_LEN - SECRET_TAG_LEN;
    plain = xmalloc(n + 1);
    ctx = EVP_CIPHER_CTX_new();
    ok = ctx != NULL && EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) == 1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, SECRET_NONCE_LEN, NULL) == 1 &&
         EVP_DecryptInit_ex(ctx, NULL, NULL, key, blob) == 1 &&
         EVP_DecryptUpdate(ctx, NULL, &len, (const unsigned char *)SECRET_AAD,
                           (int)strlen(SECRET_AAD)) == 1 &&
         EVP_DecryptUpdate(ctx, (unsigned char *)plain, &len, blob + SECRET_NONCE_LEN, (int)n) ==
             1 &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, SECRET_TAG_LEN,
                             blob + SECRET_NONCE_LEN + n) == 1 &&
         EVP_DecryptFinal_ex(ctx, (unsigned char *)plain + len, &len) == 1;
    if (!ok) {
        kg_err(errp, "secret: authentication failed (wrong key file or altered value)");
        OPENSSL_cleanse(plain, n + 1);
        free(plain);
        plain = NULL;
        goto out;
    }
    plain[n] = '\0';
    if (memchr(plain, '\0', n) != NULL) {
        kg_err(errp, "secret: decrypted value contains a NUL byte");
        OPENSSL_cleanse(plain, n + 1);
        free(plain);
        plain = NULL;
    }
out:
    EVP_CIPHER_CTX_free(ctx);
    if (blob != NULL) {
        OPENSSL_cleanse(blob, blen);
        free(blob);
    }
    return plain;
}

void
secret_free(char *plain)
{
    if (plain == NULL) {
        return;
    }
    OPENSSL_cleanse(plain, strlen(plain));
    free(plain);
}

/* ---- registry and redaction ---- */

static void
entry_wipe(struct secret_entry *e)
{
    OPENSSL_cleanse(e->value, e->len);
    free(e->value);
}

/* Index of plain (n bytes) in the registry, or -1. */
static long
registry_find(const char *plain, size_t n)
{
    for (size_t i = 0; i < nregistry; i++) {
        if (registry[i].len == n && memcmp(registry[i].value, plain, n) == 0) {
            return (long)i;
        }
    }
    return -1;
}

static void
registry_remove(size_t i)
{
    entry_wipe(&registry[i]);
    memmove(&registry[i], &registry[i + 1], (nregistry - i - 1) * sizeof(*registry));
    nregistry--;
}

/* Remember plain (copied) for secret_redact. Values shorter than 8 bytes are ignored.
 * A value already registered moves to the most recent end; when the registry is full the
 * least recent one is dropped, with a warning (once). */
void
secret_register(const char *plain)
{
    static int warned;
    struct secret_entry e;
    size_t n = plain ? strlen(plain) : 0;
    long i;

    if (n < SECRET_MIN_REDACT) {
        return;
    }
    if ((i = registry_find(plain, n)) >= 0) {
        e = registry[i];
        memmove(&registry[i], &registry[i + 1], (nregistry - (size_t)i - 1) * sizeof(*registry));
        registry[nregistry - 1] = e;
        return;
    }
    if (registry == NULL) {
        registry = xcalloc(SECRET_REGISTRY_MAX, sizeof(*registry));
    }
    if (nregistry == SECRET_REGISTRY_MAX) {
        if (!warned) {
            warned = 1;
            log_warn("secret.registry_full max=%d dropping=least_recent", SECRET_REGISTRY_MAX);
        }
        registry_remove(0);
    }
    registry[nregistry].value = xstrdup(plain);
    registry[nregistry].len = n;
    nregistry++;
}

void
secret_unregister(const char *plain)
{
    long i;

    if (plain != NULL && (i = registry_find(plain, strlen(plain))) >= 0) {
        registry_remove((size_t)i);
    }
}

/* Characters that end a credential value found after a marker ("client_secret=...")
 * in free text: separators of form bodies, JSON, headers and log fields. */
static int
value_end(char c)
{
    return c == '\0' || c == '&' || c == '"' || c == '\'' || c == '\\' || c == ',' || c == ';' ||
           c == '<' || c == '>' || c == ')' || c == ']' || c == '}' || c == ' ' || c == '\t' ||
           c == '\r' || c == '\n';
}

/* token68 (RFC 7235), the syntax of a bearer credential. */
static int
token68_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

static void
mask_run(char *p, int (*keep)(char c), int negate)
{
    for (; *p != '\0' && (negate ? !keep(*p) : keep(*p)); p++) {
        *p = '*';
    }
}

/* Mask the value after every "Bearer " (any case, one or more spaces), as token68. */
static void
redact_bearer(char *text)
{
    for (char *p = text; (p = strcasestr(p, "bearer")) != NULL;) {
        char *v = p + 6;

        if (*v != ' ') {
            p = v;
            continue;
        }
        while (*v == ' ') {
            v++;
        }
        mask_run(v, token68_char, 0);
        p = v;
    }
}

/* Mask the value after every "name=" (form bodies, query strings, log fields). */
static void
redact_assign(char *text, const char *name)
{
    size_t n = strlen(name);

    for (char *p = text; (p = strstr(p, name)) != NULL;) {
        p += n;
        mask_run(p, value_end, 1);
    }
}

/* Mask access_token values in JSON, in JSON quoted inside JSON (\"access_token\":\"...\")
 * and in "access_token=..." assignments. */
static void
redact_access_token(char *text)
{
    for (char *p = text; (p = strstr(p, "access_token")) != NULL;) {
        char *v = p + strlen("access_token");

        p = v;
        if (*v == '\\') {
            v++;
        }
        if (*v == '"') {
            v++;
        }
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        if (*v != ':' && *v != '=') {
            continue;
        }
        v++;
        while (*v == ' ' || *v == '\t') {
            v++;
        }
        if (*v == '\\') {
            v++;
        }
        if (*v == '"') {
            v++;
        }
        mask_run(v, value_end, 1);
        p = v;
    }
}

/* See secret.h. Registered secrets are masked wherever they occur; then the values that
 * follow the credential markers. Every masked byte becomes '*', so the text keeps its
 * length. */
void
secret_redact(char *text)
{
    size_t tlen;

    if (text == NULL) {
        return;
    }
    tlen = strlen(text);
    for (size_t i = nregistry; i-- > 0;) {
        const struct secret_entry *e = &registry[i];
        char *p = text;

        while ((size_t)(p - text) + e->len <= tlen &&
               (p = memmem(p, tlen - (size_t)(p - text), e->value, e->len)) != NULL) {
            memset(p, '*', e->len);
            p += e->len;
        }
    }
    redact_bearer(text);
    redact_assign(text, "client_secret=");
    redact_assign(text, "client_assertion=");
    redact_access_token(text);
}

void
secret_shutdown(void)
{
    for (size_t i = 0; i < nregistry; i++) {
        entry_wipe(&registry[i]);
    }
    free(registry);
    registry = NULL;
    nregistry = 0;
}
