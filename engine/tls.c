/* tls.c: server-side TLS contexts for the listeners. */
#include "engine/tls.h"

#include <openssl/err.h>

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
