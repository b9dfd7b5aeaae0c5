/* cmd_approve.c: `kagari approvals` and `kagari approve`: the approval queue and a
 * decision, made as a person through the people's API (HTTPS): logged in like the
 * portal (user, password and a TOTP or recovery code, into a session ended when the
 * command ends) or with a personal API token; the same checks, quorum and audit as in
 * the portal. */
#include "engine/cmd.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "engine/api.h"
#include "engine/api_login.h"
#include "engine/config.h"
#include "engine/json.h"

#define CMD_APPROVE_RESP_MAX (8u << 20)

struct cmd_approve_opts {
    const char *config, *url, *cacert, *token_file, *tenant, *comment, *user;
    int reject, json;
};

/* How the requests authenticate: a bearer token, or a session's cookie and CSRF token. */
struct cmd_approve_auth {
    char *token;
    char *cookie; /* "__Host-kagari_session=..." */
    char *csrf;
};

static int
cmd_approve_opt(int c, const char *arg, void *ud)
{
    struct cmd_approve_opts *o = ud;

    switch (c) {
    case 'c':
        o->config = arg;
        break;
    case 'u':
        o->url = arg;
        break;
    case 'a':
        o->cacert = arg;
        break;
    case 'f':
        o->token_file = arg;
        break;
    case 't':
        o->tenant = arg;
        break;
    case 'm':
        o->comment = arg;
        break;
    case 'r':
        o->reject = 1;
        break;
    case 'j':
        o->json = 1;
        break;
    case 'U':
        o->user = arg;
        break;
    default:
        return -1;
    }
    return 0;
}

static const struct option cmd_approve_lo[] = {
    { "config", required_argument, NULL, 'c' },
    { "url", required_argument, NULL, 'u' },
    { "cacert", required_argument, NULL, 'a' },
    { "token-file", required_argument, NULL, 'f' },
    { "tenant", required_argument, NULL, 't' },
    { "comment", required_argument, NULL, 'm' },
    { "reject", no_argument, NULL, 'r' },
    { "json", no_argument, NULL, 'j' },
    { "user", required_argument, NULL, 'U' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
};

static const char cmd_approve_help[] =
    "usage: kagari approvals [--json] [options]\n"
    "       kagari approve ID --tenant TENANT [--reject] --comment TEXT [options]\n"
    "List the approvals waiting for people, or decide one, as yourself through the\n"
    "people's API: your roles, the tenant's allow-list; every decision is audited.\n"
    "You log in like in the portal (--user or $KAGARI_USER): the password and the code\n"
    "of your authenticator app (or a recovery code) are asked for on a terminal, read\n"
    "from $KAGARI_PASSWORD and $KAGARI_TOTP when set, else from the first two lines of\n"
    "standard input; the session ends with the command. Or use a personal API token\n"
    "($KAGARI_API_TOKEN or --token-file).\n"
    "  --user NAME        log in as NAME\n"
    "  --url URL          the API (default https://<api.listen> of the configuration)\n"
    "  --cacert PEM       CA or certificate to trust (default the configuration's\n"
    "                     api.cert_file)\n"
    "  --token-file FILE  read the token from FILE instead of $KAGARI_API_TOKEN\n"
    "  --config FILE      configuration (default $KAGARI_CONFIG or kagari.conf.lua)\n";

static size_t
cmd_approve_collect(char *p, size_t size, size_t n, void *ud)
{
    return buf_append(ud, p, size * n) == -1 ? 0 : size * n;
}

/* The token from --token-file (first line); malloc'd or NULL. */
static char *
cmd_approve_token_file(const char *path)
{
    size_t len = 0;
    char *err = NULL, *t = util_read_file(path, 4096, &len, &err);

    if (t == NULL) {
        cmd_fail("%s", err);
        free(err);
        return NULL;
    }
    t[strcspn(t, "\r\n")] = '\0';
    return t;
}

/* The Set-Cookie of the session, kept from the login's answer. */
static size_t
cmd_approve_header(char *p, size_t size, size_t n, void *ud)
{
    char **cookie = ud;
    size_t len = size * n, name = strlen(API_SESSION_COOKIE);

    if (len > 12 + name && strncasecmp(p, "Set-Cookie: ", 12) == 0 &&
        strncmp(p + 12, API_SESSION_COOKIE "=", name + 1) == 0 && *cookie == NULL) {
        size_t v = strcspn(p + 12, ";\r\n");

        *cookie = xstrndup(p + 12, v);
    }
    return len;
}

static void
cmd_approve_wipe(char *s)
{
    if (s != NULL) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

/* One request; the body answered in *resp, the status returned (0: no answer). With
 * cookie non-NULL (a login), the session cookie of the answer is kept there. */
static long
cmd_approve_call(const char *base, const char *cacert, const struct cmd_approve_auth *auth,
                 const char *method, const char *path, const char *body, struct buf *resp,
                 char **cookie)
{
    CURL *curl = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char *url = xasprintf("%s%s", base, path), *h1 = NULL, *h2 = NULL;
    long code = 0;

    if (auth != NULL && auth->token != NULL) {
        h1 = xasprintf("Authorization: Bearer %s", auth->token);
        hdrs = curl_slist_append(hdrs, h1);
    } else if (auth != NULL && auth->cookie != NULL) {
        h1 = xasprintf("Cookie: %s", auth->cookie);
        h2 = xasprintf("X-CSRF-Token: %s", auth->csrf);
        hdrs = curl_slist_append(hdrs, h1);
        hdrs = curl_slist_append(hdrs, h2);
    }
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cmd_approve_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, resp);
    if (cookie != NULL) {
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, cmd_approve_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, cookie);
    }
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    if (cacert != NULL) {
        curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
    }
    if (curl_easy_perform(curl) == CURLE_OK) {
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    }
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(curl);
    cmd_approve_wipe(h1);
    cmd_approve_wipe(h2);
    free(url);
    return code;
}

/* A credential from the environment, or asked for (a terminal) or read (the next line of
 * standard input). Malloc'd. */
static char *
cmd_approve_ask(const char *env, const char *prompt, size_t max)
{
    const char *v = getenv(env);

    if (v != NULL && v[0] != '\0') {
        return xstrdup(v);
    }
    return cmd_read_secret(prompt, max);
}

/* Log in as user: the session's cookie and CSRF token into *auth. 0, or -1 said. */
static int
cmd_approve_login(const char *base, const char *cacert, const char *user,
                  struct cmd_approve_auth *auth)
{
    char *password = cmd_approve_ask("KAGARI_PASSWORD", "password: ", 1024);
    char *code =
        cmd_approve_ask("KAGARI_TOTP", "code (authenticator app, or a recovery code): ", 64);
    cJSON *b = cJSON_CreateObject(), *answer;
    char *body, *cookie = NULL;
    struct buf resp;
    long status;
    int rc = -1;

    cJSON_AddStringToObject(b, "user", user);
    cJSON_AddStringToObject(b, "password", password);
    /* A recovery code is written xxxxx-xxxxx; a TOTP code is digits. */
    cJSON_AddStringToObject(b, strchr(code, '-') != NULL ? "recovery_code" : "totp", code);
    body = json_print(b);
    cJSON_Delete(b);
    cmd_approve_wipe(password);
    cmd_approve_wipe(code);
    buf_init(&resp, CMD_APPROVE_RESP_MAX);
    status = cmd_approve_call(base, cacert, NULL, "POST", "/api/v1/login", body, &resp, &cookie);
    cmd_approve_wipe(body);
    answer = cJSON_Parse(resp.data ? resp.data : "");
    if (status == 0) {
        cmd_fail("%s: no answer (is kagari serve running with its api listener?)", base);
    } else if (status != 200 || cookie == NULL || json_get_string(answer, "csrf_token") == NULL) {
        const char *m = json_get_string(answer, "message");

        cmd_fail("login as %s: %ld: %s", user, status, m ? m : "refused");
    } else {
        auth->cookie = cookie;
        auth->csrf = xstrdup(json_get_string(answer, "csrf_token"));
        cookie = NULL;
        rc = 0;
    }
    cmd_approve_wipe(cookie);
    cJSON_Delete(answer);
    buf_free(&resp);
    return rc;
}

/* End the login's session (nothing to do for a token). */
static void
cmd_approve_logout(const char *base, const char *cacert, struct cmd_approve_auth *auth)
{
    struct buf resp;

    if (auth->cookie != NULL) {
        buf_init(&resp, CMD_APPROVE_RESP_MAX);
        (void)cmd_approve_call(base, cacert, auth, "POST", "/api/v1/logout", NULL, &resp, NULL);
        buf_free(&resp);
    }
    cmd_approve_wipe(auth->token);
    cmd_approve_wipe(auth->cookie);
    cmd_approve_wipe(auth->csrf);
    memset(auth, 0, sizeof(*auth));
}

/* The approvals as a table. */
static void
cmd_approve_print(const char *text)
{
    cJSON *root = cJSON_Parse(text), *a;
    const cJSON *list = json_get(root, "approvals");

    printf("%-6s %-16s %-9s %-6s %-24s %s\n", "ID", "TENANT", "ROLE", "QUORUM", "DEADLINE",
           "TITLE");
    cJSON_ArrayForEach(a, list)
    {
        const cJSON *e, *effects = json_get(a, "effects");
        char *title =
            util_cut_text(json_get_string(a, "title") ? json_get_string(a, "title") : "", 120);

        printf("%-6.0f %-16s %-9s %-6.0f %-24s %s\n", cJSON_GetNumberValue(json_get(a, "id")),
               json_get_string(a, "tenant") ? json_get_string(a, "tenant") : "",
               json_get_string(a, "role") ? json_get_string(a, "role") : "",
               cJSON_GetNumberValue(json_get(a, "approvers")),
               json_get_string(a, "deadline") ? json_get_string(a, "deadline") : "", title);
        free(title);
        cJSON_ArrayForEach(e, effects)
        {
            char *t = json_print(e), *c = util_cut_text(t, 200);

            printf("       would: %s\n", c);
            free(c);
            free(t);
        }
    }
    cJSON_Delete(root);
}

static int
cmd_approve_run(int argc, char **argv, int deciding)
{
    struct cmd_approve_opts o;
    struct config cfg;
    int have_cfg = 0, rc = 1, r;
    char *base = NULL, *cacert = NULL, *path = NULL, *body = NULL;
    struct cmd_approve_auth auth = { NULL, NULL, NULL };
    const char *user;
    struct buf resp;
    long code;

    memset(&o, 0, sizeof(o));
    o.config = cmd_default_config();
    r = cmd_parse_opts(argc, argv, cmd_approve_lo, "h", cmd_approve_opt, &o);
    if (r != 0 || optind != argc - (deciding ? 1 : 0) ||
        (deciding && (o.tenant == NULL || o.comment == NULL))) {
        fputs(cmd_approve_help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    if (deciding) { /* before anything is asked for */
        const char *id = argv[optind];

        if (id[0] < '1' || id[0] > '9' || strspn(id, "0123456789") != strlen(id) ||
            strlen(id) > 18) {
            return cmd_fail("approval id \"%s\": a number", id);
        }
    }
    if (o.url == NULL || o.cacert == NULL) {
        char *err = NULL;

        if (config_load(o.config, &cfg, &err) == -1) {
            fprintf(stderr, "kagari: %s (or pass --url and --cacert)\n", err);
            free(err);
            return 1;
        }
        have_cfg = 1;
        if (api_conf(&cfg)->listen == NULL && o.url == NULL) {
            cmd_fail("the configuration has no api listener: pass --url");
            goto out;
        }
    }
    if (o.url != NULL) {
        base = xstrdup(o.url);
    } else {
        const char *l = api_conf(&cfg)->listen;

        /* A wildcard listener is reached on loopback. */
        if (strncmp(l, "0.0.0.0:", 8) == 0) {
            base = xasprintf("https://127.0.0.1%s", l + 7);
        } else if (strncmp(l, "[::]:", 5) == 0) {
            base = xasprintf("https://[::1]%s", l + 4);
        } else {
            base = xasprintf("https://%s", l);
        }
    }
    base[strcspn(base, "\n")] = '\0';
    if (strlen(base) > 0 && base[strlen(base) - 1] == '/') {
        base[strlen(base) - 1] = '\0';
    }
    cacert = o.cacert ? xstrdup(o.cacert)
                      : (api_conf(&cfg)->cert_file ? xstrdup(api_conf(&cfg)->cert_file) : NULL);
    /* --token-file, then a login (--user, $KAGARI_USER), then $KAGARI_API_TOKEN. */
    user = o.user != NULL ? o.user : getenv("KAGARI_USER");
    if (o.token_file != NULL) {
        if ((auth.token = cmd_approve_token_file(o.token_file)) == NULL) {
            goto out;
        }
    } else if (user != NULL && user[0] != '\0') {
        if (cmd_approve_login(base, cacert, user, &auth) == -1) {
            goto out;
        }
    } else if (getenv("KAGARI_API_TOKEN") != NULL && getenv("KAGARI_API_TOKEN")[0] != '\0') {
        auth.token = xstrdup(getenv("KAGARI_API_TOKEN"));
    } else {
        cmd_fail("no user and no token: log in with --user NAME (or $KAGARI_USER), or give a "
                 "personal API token ($KAGARI_API_TOKEN or --token-file; POST /api/v1/tokens)");
        goto out;
    }
    buf_init(&resp, CMD_APPROVE_RESP_MAX);
    if (deciding) {
        cJSON *b = cJSON_CreateObject();
        char *id = argv[optind];

        cJSON_AddStringToObject(b, "decision", o.reject ? "reject" : "approve");
        cJSON_AddStringToObject(b, "comment", o.comment);
        body = json_print(b);
        cJSON_Delete(b);
        path = xasprintf("/api/v1/tenants/%s/approvals/%s/decision", o.tenant, id);
        code = cmd_approve_call(base, cacert, &auth, "POST", path, body, &resp, NULL);
    } else {
        code = cmd_approve_call(base, cacert, &auth, "GET", "/api/v1/approvals", NULL, &resp, NULL);
    }
    if (code == 0) {
        cmd_fail("%s: no answer (is kagari serve running with its api listener?)", base);
    } else if (code != 200) {
        cJSON *e = cJSON_Parse(resp.data ? resp.data : "");
        const char *m = json_get_string(e, "message");

        cmd_fail("%ld: %s", code, m ? m : "refused");
        cJSON_Delete(e);
    } else if (deciding) {
        cJSON *a = cJSON_Parse(resp.data);

        printf("approval %s: %s (%s)\n", argv[optind], o.reject ? "rejected" : "approved",
               json_get_string(a, "state") ? json_get_string(a, "state") : "?");
        cJSON_Delete(a);
        rc = 0;
    } else if (o.json) {
        printf("%s\n", resp.data);
        rc = 0;
    } else {
        cmd_approve_print(resp.data);
        rc = 0;
    }
    buf_free(&resp);
out:
    cmd_approve_logout(base, cacert, &auth);
    free(base);
    free(cacert);
    free(path);
    free(body);
    if (have_cfg) {
        config_free(&cfg);
    }
    return rc;
}

static int
cmd_approvals_exec(int argc, char **argv)
{
    return cmd_approve_run(argc, argv, 0);
}

static int
cmd_approve_exec(int argc, char **argv)
{
    return cmd_approve_run(argc, argv, 1);
}

const struct cmd_entry cmd_approvals_entry = {
    .name = "approvals",
    .usage = "approvals",
    .summary = "approvals waiting for people (through the people's API)",
    .exec = cmd_approvals_exec,
};

const struct cmd_entry cmd_approve_entry = {
    .name = "approve",
    .usage = "approve",
    .summary = "approve or reject an approval, as yourself",
    .exec = cmd_approve_exec,
};
