/* tls.h: server-side TLS contexts, shared by every listener (intake, and later syslog
 * over TLS and the portal). */
#ifndef KAGARI_TLS_H
#define KAGARI_TLS_H

#include <openssl/ssl.h>

#include "engine/util.h"

/* A server context for the PEM certificate chain and private key at cert_file and
 * key_file: TLS 1.2 or later, the key checked against the certificate. NULL with *errp
 * naming both files and OpenSSL's reason. Free with SSL_CTX_free. */
SSL_CTX *tls_server_context(const char *cert_file, const char *key_file, char **errp);

/* Write a new P-256 private key (key_file, 0600) and a self-signed certificate for it
 * (cert_file) valid for days, with the subjectAltName san ("DNS:localhost,IP:127.0.0.1").
 * Neither file may exist. For demos and first starts. */
int tls_self_signed(const char *cert_file, const char *key_file, const char *san, int days,
                    char **errp) KG_WUR;

#endif
