/* test_secret.c: key files, AES-256-GCM values, plain passthrough and redaction. */
#include "engine/secret.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/test.h"

static char tmpdir[64];

static void
tmp_setup(void)
{
    strcpy(tmpdir, "/tmp/kg-secret-XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        tmpdir[0] = '\0';
    }
}

static void
tmp_teardown(void)
{
    char *cmd;

    if (tmpdir[0] == '\0') {
        return;
    }
    cmd = xasprintf("rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", tmpdir);
    }
    free(cmd);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    if (fd >= 0) {
        if (write(fd, text, strlen(text)) < 0) {
            fprintf(stderr, "write %s failed\n", path);
        }
        fchmod(fd, mode);
        close(fd);
    }
}

static void
test_keyfile_create(void)
{
    struct stat st;
    char *path, *err = NULL, *text;
    size_t len = 0;

    tmp_setup();
    T_REQUIRE(tmpdir[0] != '\0');
    path = xasprintf("%s/key", tmpdir);
    T_EQ_INT(secret_keyfile_create(path, &err), 0);
    T_ASSERT(err == NULL);
    T_EQ_INT(stat(path, &st), 0);
    T_EQ_INT(st.st_mode & 07777, 0600);
    text = util_read_file(path, 1024, &len, NULL);
    T_REQUIRE(text != NULL);
    T_EQ_INT(len, 65);
    T_EQ_INT(text[64], '\n');
    T_EQ_INT(strspn(text, "0123456789abcdef"), 64);
    /* A second create refuses to overwrite and leaves the key as it was. */
    T_EQ_INT(secret_keyfile_create(path, &err), -1);
    T_CONTAINS(err, "already exists");
    free(err);
    err = NULL;
    {
        char *again = util_read_file(path, 1024, &len, NULL);

        T_EQ_STR(again, text);
        free(again);
    }
    T_EQ_INT(secret_load_key(path, &err), 0);
    T_ASSERT(err == NULL);
    secret_unload_key();
    free(text);
    free(path);
    tmp_teardown();
}

static void
test_load_refuses(void)
{
    char *path, *err = NULL;

    tmp_setup();
    T_REQUIRE(tmpdir[0] != '\0');
    path = xasprintf("%s/key", tmpdir);

    /* A valid key readable by everyone. */
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0644);
    T_EQ_INT(secret_load_key(path, &err), -1);
    T_CONTAINS(err, "0644");
    T_CONTAINS(err, "chmod 600");
    free(err);
    err = NULL;

    /* Group-readable only: refused too. */
    chmod(path, 0640);
    T_EQ_INT(secret_load_key(path, &err), -1);
    T_CONTAINS(err, "group or others");
    free(err);
    err = NULL;

    /* Garbage content with the right mode. */
    write_file(path, "not a key at all\n", 0600);
    T_EQ_INT(secret_load_key(path, &err), -1);
    T_CONTAINS(err, "64 hex");
    free(err);
    err = NULL;

    /* Right length, but not hex. */
    write_file(path, "zz112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0600);
    T_EQ_INT(secret_load_key(path, &err), -1);
    T_CONTAINS(err, "64 hex");
    free(err);
    err = NULL;

    /* Trailing junk after a valid key. */
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\nx", 0600);
    T_EQ_INT(secret_load_key(path, &err), -1);
    free(err);
    err = NULL;

    /* Missing file. */
    T_EQ_INT(secret_load_key("/nonexistent/kagari.key", &err), -1);
    T_ASSERT(err != NULL);
    free(err);
    err = NULL;

    /* Without the newline it is accepted. */
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff", 0600);
    T_EQ_INT(secret_load_key(path, &err), 0);
    secret_unload_key();
    free(path);
    tmp_teardown();
}

/* Create and load a fresh key in the temp dir; returns 0 on success. */
static int
fresh_key(const char *name)
{
    char *path = xasprintf("%s/%s", tmpdir, name), *err = NULL;
    int rc = secret_keyfile_create(path, &err) == 0 && secret_load_key(path, &err) == 0 ? 0 : -1;

    if (rc != 0) {
        fprintf(stderr, "fresh_key: %s\n", err ? err : "?");
    }
    free(err);
    free(path);
    return rc;
}

static void
test_roundtrip(void)
{
    const char *values[] = { "s3cr3t~Value.With_Symbols-", "", "x",
                             "日本語のパスワード with spaces and \"quotes\"" };
    char *err = NULL;

    tmp_setup();
    T_REQUIRE(tmpdir[0] != '\0');
    T_REQUIRE(fresh_key("key") == 0);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        char *enc = secret_encrypt(values[i], &err), *dec;

        T_REQUIRE(enc != NULL);
        T_ASSERT(strncmp(enc, "enc:v1:", 7) == 0);
        T_ASSERT(strlen(values[i]) < 8 || strstr(enc, values[i]) == NULL);
        dec = secret_decrypt(enc, &err);
        T_EQ_STR(dec, values[i]);
        secret_free(dec);
        free(enc);
    }
    T_ASSERT(err == NULL);
    secret_unload_key();
    tmp_teardown();
}

static void
test_nonce_differs(void)
{
    char *a, *b;

    tmp_setup();
    T_REQUIRE(tmpdir[0] != '\0');
    T_REQUIRE(fresh_key("key") == 0);
    a = secret_encrypt("same plaintext", NULL);
    b = secret_encrypt("same plaintext", NULL);
    T_REQUIRE(a != NULL && b != NULL);
    T_ASSERT(strcmp(a, b) != 0);
    /* 12-byte nonce + 14 bytes + 16-byte tag = 42 bytes = 56 base64 characters. */
    T_EQ_INT(strlen(a), 7 + 56);
    free(a);
    free(b);
    secret_unload_key();
    tmp_teardown();
}

static void
test_tamper(void)
{
    char *enc, *err = NULL, *dec;
    size_t n;

    tmp_setup();
    T_REQUIRE(tmpdir[0] != '\0');
    T_REQUIRE(fresh_key("key") == 0);
    enc = secret_encrypt("client-secret-value", NULL);
    T_REQUIRE(enc != NULL);
    n = strlen(enc);
    /* Flip one character in every region: nonce, ciphertext and tag. */
    for (size_t pos = 8; pos < n - 2; pos += 5) {
        char saved = enc[pos];

        enc[pos] = saved == 'A' ? 'B' : 'A';
        dec = secret_decrypt(enc, &err);
        T_ASSERT(dec == NULL);
        T_ASSERT(err != NULL);
        free(err);
        err = NULL;
        enc[pos] = saved;
    }
    dec = secret_decrypt(enc, &err);
    T_EQ_STR(dec, "client-secret-value");
    secret_free(dec);

    /* Malformed base64 and truncated values. */
    dec = secret_decrypt("enc:v1:!!!!", &err);
    T_ASSERT(dec == NULL);
    T_CONTAINS(err, "malformed");
    free(err);
    err = NULL;
    dec = secret_decrypt("enc:v1:AAAA", &err);
    T_ASSERT(dec == NULL);
    free(err);
    err = NULL;

    /* Another key fails authentication. */
    T_REQUIRE(fresh_key("key2") == 0);
    dec = secret_decrypt(enc, &err);
    T_ASSERT(dec == NULL);
    T_CONTAINS(err, "authentication failed");
    free(err);
    err = NULL;

    /* No key at all. */
    secret_unload_key();
    dec = secret_decrypt(enc, &err);
    T_ASSERT(dec == NULL);
    T_CONTAINS(err, "key");
    free(err);
    err = NULL;
    T_ASSERT(secret_encrypt("x", &err) == NULL);
    T_CONTAINS(err, "no key");
    free(err);
    free(enc);
    tmp_teardown();
}

static void
test_plain_passthrough(void)
{
    char *err = NULL, *dec;

    /* Works without any key. */
    dec = secret_decrypt("plain-value", &err);
    T_EQ_STR(dec, "plain-value");
    secret_free(dec);
    dec = secret_decrypt("", &err);
    T_EQ_STR(dec, "");
    secret_free(dec);
    dec = secret_decrypt("enc:v2:something", &err);
    T_EQ_STR(dec, "enc:v2:something");
    secret_free(dec);
    T_ASSERT(err == NULL);
    secret_free(NULL);
}

static void
test_redact(void)
{
    char text[512];

    secret_register("Sup3r~Secret.Value_42");
    secret_register("short"); /* under 8 bytes: never masked */
    secret_register(NULL);

    strcpy(text, "login with Sup3r~Secret.Value_42 failed; again Sup3r~Secret.Value_42.");
    secret_redact(text);
    T_EQ_STR(text, "login with ********************* failed; again *********************.");

    strcpy(text, "a short word stays");
    secret_redact(text);
    T_EQ_STR(text, "a short word stays");

    strcpy(text, "Authorization: Bearer eyJ0eXAi.eyJhdWQi.c2lnbmF0dXJl\r\nHost: x");
    secret_redact(text);
    T_EQ_STR(text, "Authorization: Bearer ******************************\r\nHost: x");

    strcpy(text, "authorization: bearer abc-DEF_123= next");
    secret_redact(text);
    T_EQ_STR(text, "authorization: bearer ************ next");

    strcpy(text, "client_id=abc&client_secret=q%7Ew8Q~x&grant_type=client_credentials");
    secret_redact(text);
    T_EQ_STR(text, "client_id=abc&client_secret=*********&grant_type=client_credentials");

    strcpy(text, "client_assertion_type=urn%3Ajwt&client_assertion=aaa.bbb.ccc&scope=x");
    secret_redact(text);
    T_EQ_STR(text, "client_assertion_type=urn%3Ajwt&client_assertion=***********&scope=x");

    strcpy(text, "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"eyJ0.x.y\"}");
    secret_redact(text);
    T_EQ_STR(text, "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"********\"}");

    strcpy(text, "{\"access_token\": \"abc.def\", \"n\": 1}");
    secret_redact(text);
    T_EQ_STR(text, "{\"access_token\": \"*******\", \"n\": 1}");

    /* A response body quoted inside a journal's JSON string. */
    strcpy(text, "{\"body\":\"{\\\"access_token\\\":\\\"tok.en\\\"}\"}");
    secret_redact(text);
    T_EQ_STR(text, "{\"body\":\"{\\\"access_token\\\":\\\"******\\\"}\"}");

    strcpy(text, "nothing to see: tenant=contoso scope=https://graph.microsoft.com/.default");
    secret_redact(text);
    T_EQ_STR(text, "nothing to see: tenant=contoso scope=https://graph.microsoft.com/.default");

    secret_redact(NULL);
    secret_shutdown();

    /* After shutdown the registry is empty. */
    strcpy(text, "Sup3r~Secret.Value_42");
    secret_redact(text);
    T_EQ_STR(text, "Sup3r~Secret.Value_42");
}

static void
test_registry_bound(void)
{
    char text[64], value[32];

    secret_register("first-secret-value");
    for (int i = 0; i < 600; i++) {
        snprintf(value, sizeof(value), "token-number-%04d", i);
        secret_register(value);
        if (i % 100 == 0) {
            secret_register("first-secret-value"); /* in use: stays registered */
        }
    }
    strcpy(text, "first-secret-value token-number-0000 token-number-0599");
    secret_redact(text);
    T_EQ_STR(text, "****************** token-number-0000 *****************");
    secret_shutdown();
}

static void
test_unregister(void)
{
    char text[64];

    secret_register("old-access-token-value");
    secret_register("new-access-token-value");
    secret_unregister("old-access-token-value");
    secret_unregister("never-registered-value");
    secret_unregister(NULL);
    strcpy(text, "old-access-token-value new-access-token-value");
    secret_redact(text);
    T_EQ_STR(text, "old-access-token-value **********************");
    secret_shutdown();
}

TEST_LIST = {
    { "keyfile_create", test_keyfile_create },
    { "load_refuses", test_load_refuses },
    { "roundtrip", test_roundtrip },
    { "nonce_differs", test_nonce_differs },
    { "tamper", test_tamper },
    { "plain_passthrough", test_plain_passthrough },
    { "redact", test_redact },
    { "registry_bound", test_registry_bound },
    { "unregister", test_unregister },
    { NULL, NULL },
};
