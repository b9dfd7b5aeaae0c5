/* panos_keygen.c: `kagari panos keygen --tenant T`: asks the firewall for an API key
 * (type=keygen) with an admin's user and password, read once: from the terminal (the
 * password without echo), or as two lines of standard input when it is not a terminal.
 * Prints the key encrypted with the configuration's key file, for
 * tenants.<id>.panos.api_key; the password and the key itself are never printed or
 * kept. */
#include "connectors/panos_keygen.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include "connectors/httpc.h"
#include "connectors/panos_api.h"

struct keygen_wait {
    struct event_base *base;
    int status;
    char *body;
    char *error;
};

static void
keygen_done(void *arg, const struct httpc_response *resp)
{
    struct keygen_wait *w = arg;

    w->status = resp->status;
    w->body = xstrndup(resp->body != NULL ? resp->body : "", resp->body_len);
    w->error = resp->error != NULL ? xstrdup(resp->error) : NULL;
    event_base_loopbreak(w->base);
}

/* One line of input (without its line end) into buf; echo off when from a terminal and
 * secret. -1 at end of input or on an over-long line. */
static int
keygen_read(const char *prompt, int secret, char *buf, size_t n)
{
    int tty = isatty(STDIN_FILENO);
    struct termios old, quiet;
    int rc = 0;
    size_t len;

    if (tty) {
        fputs(prompt, stderr);
        fflush(stderr);
        if (secret && tcgetattr(STDIN_FILENO, &old) == 0) {
            quiet = old;
            quiet.c_lflag &= ~(tcflag_t)ECHO;
            (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
        } else {
            secret = 0;
        }
    }
    if (fgets(buf, (int)n, stdin) == NULL) {
        rc = -1;
    }
    if (tty && secret) {
        (void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
        fputc('\n', stderr);
    }
    len = rc == 0 ? strlen(buf) : 0;
    if (rc == 0 && (len == 0 || buf[len - 1] != '\n') && !feof(stdin)) {
        rc = -1; /* longer than the buffer */
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        buf[--len] = '\0';
    }
    return rc == 0 && len > 0 ? 0 : -1;
}

/* POST type=keygen to the firewall; 0 with *key (secret_free it) or -1 with *errp. */
static int
keygen_request(const struct config *cfg, const char *url, const char *user, const char *password,
               char **key, char **errp)
{
    struct keygen_wait w = { 0 };
    struct httpc_request rq = { 0 };
    const char *headers[] = { "Content-Type: application/x-www-form-urlencoded",
                              "Accept: application/xml", NULL };
    struct xml_node *root = NULL;
    char *u = call_escape(user), *p = call_escape(password), *body, *full, *err = NULL;
    struct httpc_call *call;
    int rc = -1;

    *key = NULL;
    body = xasprintf("type=keygen&user=%s&password=%s", u, p);
    OPENSSL_cleanse(p, strlen(p));
    free(u);
    free(p);
    full = xasprintf("%s/api/", url);
    w.base = event_base_new();
    if (w.base == NULL || httpc_init(w.base, errp) == -1) {
        if (w.base != NULL) {
            event_base_free(w.base);
        }
        OPENSSL_cleanse(body, strlen(body));
        free(body);
        free(full);
        return w.base == NULL ? kg_err(errp, "no event base") : -1;
    }
    rq.method = "POST";
    rq.url = full;
    rq.headers = headers;
    rq.body = body;
    rq.body_len = strlen(body);
    rq.timeout = cfg->connectors.timeout > 0 ? cfg->connectors.timeout : 30;
    rq.ca_file = cfg->connectors.ca_file;
    rq.proxy = cfg->connectors.proxy;
    rq.max_response = 1 << 20;
    call = httpc_start(&rq, keygen_done, &w, &err);
    if (call != NULL) {
        event_base_dispatch(w.base);
    }
    httpc_shutdown();
    event_base_free(w.base);
    OPENSSL_cleanse(body, strlen(body));
    free(body);
    if (call == NULL) {
        kg_err(errp, "%s: %s", full, err ? err : "cannot send the request");
    } else if (w.status == 0) {
        kg_err(errp, "%s: %s", full, w.error ? w.error : "no answer");
    } else if (xml_parse(w.body, strlen(w.body), &root, &err) == -1 ||
               strcmp(root->name, "response") != 0) {
        kg_err(errp, "%s: HTTP %d, not a PAN-OS answer", full, w.status);
    } else if (w.status == 403 ||
               strcmp(xml_attr(root, "status") ? xml_attr(root, "status") : "", "success") != 0) {
        struct buf b;

        buf_init(&b, 4096);
        xml_text_all(root, &b, "; ");
        kg_err(errp, "the firewall refused the user and password (HTTP %d: %s)", w.status,
               b.len > 0 ? b.data : "error");
        buf_free(&b);
    } else {
        const char *k = xml_path_text(root, "result/key");

        if (k == NULL || k[0] == '\0') {
            kg_err(errp, "the firewall's answer has no key");
        } else {
            *key = xstrdup(k);
            rc = 0;
        }
    }
    if (w.body != NULL) {
        OPENSSL_cleanse(w.body, strlen(w.body));
    }
    xml_free(root); /* its text held the key: freed, and the copy is the caller's */
    free(w.body);
    free(w.error);
    free(err);
    free(full);
    return rc;
}

static int
panos_keygen_exec(int argc, char **argv)
{
    static const char help[] =
        "usage: kagari panos keygen --tenant ID [--config FILE]\n"
        "Ask the tenant's firewall (tenants.<id>.panos.url) for an API key with an admin's\n"
        "user and password (asked once: from the terminal, or as two lines of standard\n"
        "input), and print the key encrypted with the configuration's key file, to put in\n"
        "tenants.<id>.panos.api_key. Neither the password nor the key is kept or shown.\n";
    const char *config = NULL, *tenant = NULL;
    struct config cfg;
    const struct config_tenant *ct;
    const struct panos_conf *pc;
    char user[256], password[1024], *key = NULL, *enc = NULL, *err = NULL;
    int rc = 1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(help, stdout);
            return 0;
        } else if (strcmp(argv[i], "--tenant") == 0 && i + 1 < argc) {
            tenant = argv[++i];
        } else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "keygen") != 0 || i != 1) {
            fputs(help, stderr);
            return 2;
        }
    }
    if (argc < 2 || strcmp(argv[1], "keygen") != 0 || tenant == NULL) {
        fputs(help, stderr);
        return 2;
    }
    if (config == NULL) {
        config = getenv("KAGARI_CONFIG") != NULL ? getenv("KAGARI_CONFIG") : "kagari.conf.lua";
    }
    if (config_load(config, &cfg, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        free(err);
        return 1;
    }
    ct = config_tenant(&cfg, tenant);
    pc = ct != NULL ? config_tenant_block(ct, &panos_api_section) : NULL;
    if (pc == NULL) {
        fprintf(stderr, "kagari: %s: no tenants.%s.panos block with the firewall's url\n", config,
                tenant);
        goto out;
    }
    if (secret_load_key(cfg.connectors.key_file, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    if (keygen_read("PAN-OS admin user: ", 0, user, sizeof(user)) == -1 ||
        keygen_read("Password: ", 1, password, sizeof(password)) == -1) {
        fprintf(stderr, "kagari: expected a user and a password\n");
        goto out;
    }
    if (keygen_request(&cfg, pc->url, user, password, &key, &err) == -1) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    enc = secret_encrypt(key, &err);
    if (enc == NULL) {
        fprintf(stderr, "kagari: %s\n", err);
        goto out;
    }
    printf("%s\n", enc);
    fprintf(stderr, "kagari: put it in tenants.%s.panos: api_key = \"%s\"\n", tenant, enc);
    rc = 0;
out:
    OPENSSL_cleanse(password, sizeof(password));
    secret_free(key);
    free(enc);
    free(err);
    secret_unload_key();
    config_free(&cfg);
    return rc;
}

const struct plugin_verb panos_keygen_verb = {
    "panos",
    "panos keygen",
    "make a firewall API key for a tenant (asks user and password once)",
    panos_keygen_exec,
};
