/* tls.c: server-side TLS contexts for the listeners. */
#include "engine/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

SSL_CTX *
tls_server_context(const char *cert_file, const char *key_file, char **errp)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    if (ctx == NULL) {
        kg_err(errp, "TLS: cannot create a context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        char ebuf[256];

        ERR_error_string_n(ERR_get_error(), ebuf, sizeof(ebuf));
        kg_err(errp, "TLS: %s / %s: %s", cert_file, key_file, ebuf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

/* A P-256 key and a certificate for it signed by itself, for a demo or a first start
 * (an operator replaces it with one their clients trust). */
int
tls_self_signed(const char *cert_file, const char *key_file, const char *san, int days, char **errp)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_EXTENSION *ext = NULL;
    X509V3_CTX v3;
    X509_NAME *name;
    FILE *f = NULL;
    unsigned char serial[16];
    BIGNUM *bn = NULL;
    int fd, rc = -1;

    if (key == NULL || x == NULL || RAND_bytes(serial, sizeof(serial)) != 1) {
        kg_err(errp, "TLS: cannot make a key");
        goto out;
    }
    serial[0] &= 0x7f;
    bn = BN_bin2bn(serial, sizeof(serial), NULL);
    X509_set_version(x, 2);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
    X509_gmtime_adj(X509_getm_notBefore(x), -300);
    X509_gmtime_adj(X509_getm_notAfter(x), (long)days * 86400);
    X509_set_pubkey(x, key);
    name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"kagari", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    ext = X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, san);
    if (ext == NULL || X509_add_ext(x, ext, -1) != 1 || X509_sign(x, key, EVP_sha256()) == 0) {
        kg_err(errp, "TLS: cannot make a certificate for %s", san);
        goto out;
    }
    fd = open(key_file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd == -1 || (f = fdopen(fd, "w")) == NULL) {
        kg_err(errp, "%s: %s", key_file, strerror(errno));
        if (fd != -1) {
            close(fd);
        }
        goto out;
    }
    if (PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) != 1 || fclose(f) != 0) {
        f = NULL;
        kg_err(errp, "%s: cannot write the key", key_file);
        goto out;
    }
    f = fopen(cert_file, "wx");
    if (f == NULL || PEM_write_X509(f, x) != 1) {
        kg_err(errp, "%s: %s", cert_file, f == NULL ? strerror(errno) : "cannot write");
        goto out;
    }
    rc = fclose(f) == 0 ? 0 : kg_err(errp, "%s: cannot write", cert_file);
    f = NULL;
out:
    if (f != NULL) {
        fclose(f);
    }
    X509_EXTENSION_free(ext);
    BN_free(bn);
    X509_free(x);
    EVP_PKEY_free(key);
    return rc;
}
