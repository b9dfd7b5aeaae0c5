/* secret.h: connector credentials at rest. Values in the configuration may be written
 * as "enc:v1:<base64>", AES-256-GCM with a random 96-bit nonce, under a 32-byte key kept
 * in a key file (mode 0600) that `kagari init` creates. Secrets never reach logs or run
 * journals: secret_redact() masks them. */
#ifndef KAGARI_SECRET_H
#define KAGARI_SECRET_H

#include <stddef.h>

#include "engine/util.h"

/* Create a new random key file (0600, refuses to overwrite). */
int secret_keyfile_create(const char *path, char **errp) KG_WUR;
/* Load the key used by secret_encrypt/secret_decrypt. */
int secret_load_key(const char *path, char **errp) KG_WUR;
void secret_unload_key(void); /* wipes it from memory */

/* "enc:v1:..." for plain; malloc'd. NULL and *errp without a key. */
char *secret_encrypt(const char *plain, char **errp);
/* The plaintext of value: decrypted when it starts with "enc:v1:", else a copy (plain
 * values are allowed, with a warning at load time). Malloc'd; wipe with secret_free. A
 * tampered or wrongly keyed value fails authentication: NULL and *errp. */
char *secret_decrypt(const char *value, char **errp);
void secret_free(char *plain); /* zero, then free; NULL is a no-op */

/* Register a plaintext secret so that secret_redact masks it; and mask every
 * registered secret (and any "Bearer <token>", "client_secret=...", "access_token" value)
 * in text, in place, with '*'. */
void secret_register(const char *plain);
/* Forget a registered secret (an access token that was replaced); unknown values are a
 * no-op. Keeps the registry to the secrets still in use. */
void secret_unregister(const char *plain);
void secret_redact(char *text);
void secret_shutdown(void);

#endif
