/* cmd_user.c: `kagari user add|list|disable|enable|unlock|reset-totp|password|role` and
 * `kagari allow list|add|remove`: people, their roles and the address allow-lists in
 * control.db. Every change is written to the audit table. */
#include "engine/cmd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/api.h"
#include "engine/auth.h"
#include "engine/cidr.h"
#include "engine/config.h"
#include "engine/qr.h"
#include "engine/secret.h"
#include "engine/store.h"
#include "engine/totp.h"

struct cmd_user_opts {
    const char *config;
    const char *roles[16]; /* TENANT:ROLE */
    int nroles;
};

static int
cmd_user_opt(int c, const char *arg, void *ud)
{
    struct cmd_user_opts *o = ud;

    if (c == 'c') {
        o->config = arg;
    } else if (c == 'r' && o->nroles < 16) {
        o->roles[o->nroles++] = arg;
    } else {
        return -1;
    }
    return 0;
}

static const char cmd_user_help[] =
    "usage: kagari user add NAME --role TENANT:ROLE [--role ...]   (password on stdin)\n"
    "       kagari user list\n"
    "       kagari user disable|enable|unlock NAME\n"
    "       kagari user reset-totp NAME\n"
    "       kagari user password NAME   (new password on stdin)\n"
    "       kagari user role NAME TENANT ROLE|none\n"
    "Roles per tenant: admin, engineer, analyst, auditor; '*:operator' is the platform\n"
    "operator, in every tenant. add and reset-totp print the TOTP secret, its QR code and\n"
    "recovery codes once; the first login with a code confirms the enrolment.\n"
    "  --config FILE   configuration (default $KAGARI_CONFIG or kagari.conf.lua)\n";

static void
cmd_user_audit(struct store *st, const char *tenant, const char *action, const char *target,
               const char *detail)
{
    cmd_audit(st, tenant, action, target, "ok", detail);
}

/* One line from stdin (without echo on a terminal), at most AUTH_PASSWORD_MAX bytes. */
static char *
cmd_user_read_password(const char *prompt)
{
    return cmd_read_secret(prompt, AUTH_PASSWORD_MAX);
}

/* Check "TENANT:ROLE" against the roles and the tenants that exist. */
static int
cmd_user_parse_role(struct store *st, const char *spec, char *tenant, size_t tn, const char **role)
{
    static const char *const roles[] = { "admin",   "engineer", "analyst",
                                         "auditor", "operator", "none" };
    const char *colon = strchr(spec, ':');
    struct store_tenant_info *ts = NULL;
    size_t n = 0;
    int known = 0;

    if (colon == NULL || (size_t)(colon - spec) >= tn || colon == spec) {
        return cmd_fail("role \"%s\": expected TENANT:ROLE", spec);
    }
    snprintf(tenant, tn, "%.*s", (int)(colon - spec), spec);
    *role = NULL;
    for (size_t i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
        if (strcmp(colon + 1, roles[i]) == 0) {
            *role = roles[i];
        }
    }
    if (*role == NULL) {
        return cmd_fail("role \"%s\": admin, engineer, analyst, auditor, or *:operator", colon + 1);
    }
    if ((strcmp(tenant, "*") == 0) != (strcmp(*role, "operator") == 0) &&
        strcmp(*role, "none") != 0) {
        return cmd_fail("the operator role is given for every tenant at once: --role '*:operator'");
    }
    if (strcmp(tenant, "*") == 0) {
        return 0;
    }
    if (store_tenant_list(st, &ts, &n, NULL) == 0) {
        for (size_t i = 0; i < n; i++) {
            known |= strcmp(ts[i].id, tenant) == 0;
        }
    }
    free(ts);
    return known ? 0 : cmd_fail("unknown tenant %s", tenant);
}

/* The TOTP secret as stored: encrypted with the secrets key (secret.key, as connector
 * credentials are) when there is one. Malloc'd. */
static char *
cmd_user_seal(const struct config *cfg, const char *secret, char **errp)
{
    static int loaded;

    if (!loaded && access(cfg->connectors.key_file, F_OK) == 0) {
        if (secret_load_key(cfg->connectors.key_file, errp) == -1) {
            return NULL;
        }
        loaded = 1;
    }
    return loaded ? secret_encrypt(secret, errp) : xstrdup(secret);
}

/* Print the enrolment of a new TOTP secret and replace the recovery codes. */
static int
cmd_user_enrol(struct store *st, const struct config *cfg, const struct store_user *u,
               const char *secret)
{
    char *uri = totp_uri(api_conf(cfg)->issuer, u->name, secret);
    char *qr = qr_text(uri);
    char codes[AUTH_RECOVERY_CODES][12];
    char digests[AUTH_RECOVERY_CODES][65];
    char *dv[AUTH_RECOVERY_CODES];
    char *err = NULL;

    for (int i = 0; i < AUTH_RECOVERY_CODES; i++) {
        if (auth_recovery_code(codes[i]) == -1) {
            free(uri);
            free(qr);
            return cmd_fail("no randomness");
        }
        auth_recovery_digest(codes[i], digests[i]);
        dv[i] = digests[i];
    }
    if (store_recovery_set(st, u->id, dv, AUTH_RECOVERY_CODES, &err) == -1) {
        cmd_fail("%s", err);
        free(err);
        free(uri);
        free(qr);
        return 1;
    }
    printf("TOTP secret (shown once): %s\n%s\n%s", secret, uri, qr ? qr : "");
    printf("recovery codes (shown once, each works once):\n");
    for (int i = 0; i < AUTH_RECOVERY_CODES; i++) {
        printf("  %s\n", codes[i]);
    }
    free(uri);
    free(qr);
    return 0;
}

static int
cmd_user_add(struct store *st, const struct config *cfg, const struct cmd_user_opts *o,
             const char *name)
{
    struct auth_cost cost = api_cost(api_conf(cfg));
    char secret[TOTP_SECRET_CHARS + 1];
    char tenant[64], *pw, *hash = NULL, *err = NULL, *sealed = NULL;
    const char *role;
    struct store_user u;
    int64_t id;
    int rc = 1;

    if (o->nroles == 0) {
        return cmd_fail("give the user a role: --role TENANT:ROLE");
    }
    for (int i = 0; i < o->nroles; i++) {
        if (cmd_user_parse_role(st, o->roles[i], tenant, sizeof(tenant), &role) != 0) {
            return 1;
        }
    }
    pw = cmd_user_read_password("password: ");
    if (auth_password_check(pw, name, &err) == -1 ||
        auth_password_hash(pw, &cost, &hash, &err) == -1) {
        cmd_fail("%s", err);
        goto out;
    }
    if (totp_new_secret(secret) == -1) {
        cmd_fail("no randomness");
        goto out;
    }
    if ((sealed = cmd_user_seal(cfg, secret, &err)) == NULL ||
        store_user_add(st, name, hash, sealed, &id, &err) == -1) {
        cmd_fail("%s", err);
        goto out;
    }
    for (int i = 0; i < o->nroles; i++) {
        (void)!cmd_user_parse_role(st, o->roles[i], tenant, sizeof(tenant), &role);
        if (store_role_set(st, id, tenant, strcmp(role, "none") ? role : NULL, &err) == -1) {
            cmd_fail("%s", err);
            goto out;
        }
        cmd_user_audit(st, strcmp(tenant, "*") ? tenant : NULL, "user.role", name, NULL);
    }
    cmd_user_audit(st, NULL, "user.add", name, NULL);
    memset(&u, 0, sizeof(u));
    u.id = id;
    snprintf(u.name, sizeof(u.name), "%s", name);
    printf("user %s\n", name);
    rc = cmd_user_enrol(st, cfg, &u, secret);
out:
    free(err);
    free(hash);
    free(pw);
    free(sealed);
    return rc;
}

static int
cmd_user_list(struct store *st)
{
    struct store_user *v = NULL;
    size_t n = 0;
    char *err = NULL;
    int64_t now = util_now_ms();

    if (store_user_list(st, &v, &n, &err) == -1) {
        cmd_fail("%s", err);
        free(err);
        return 1;
    }
    printf("%-24s %-9s %-6s %-32s %s\n", "USER", "STATE", "TOTP", "ROLES", "LAST LOGIN");
    for (size_t i = 0; i < n; i++) {
        struct store_role *roles = NULL;
        size_t nr = 0;
        char rs[256] = "", ts[32] = "-";

        if (store_roles_get(st, v[i].id, &roles, &nr, NULL) == 0) {
            for (size_t k = 0; k < nr; k++) {
                size_t l = strlen(rs);

                snprintf(rs + l, sizeof(rs) - l, "%s%s:%s", k ? "," : "", roles[k].tenant,
                         roles[k].role);
            }
        }
        free(roles);
        if (v[i].last_login > 0) {
            util_fmt_time(v[i].last_login, ts);
        }
        printf("%-24s %-9s %-6s %-32s %s\n", v[i].name,
               v[i].disabled             ? "disabled"
               : v[i].locked_until > now ? "locked"
                                         : "active",
               v[i].totp_confirmed ? "yes" : "no", rs[0] ? rs : "-", ts);
    }
    store_users_free(v, n);
    return 0;
}

/* The verbs that change one existing user. */
static int
cmd_user_change(struct store *st, const struct config *cfg, const char *sub, int argc, char **argv)
{
    const char *name = argv[0];
    struct store_user u;
    char *err = NULL;
    int rc = 1, found = store_user_get(st, name, &u, &err);

    if (found != 1) {
        cmd_fail("%s", found == 0 ? "no such user" : err);
        free(err);
        return 1;
    }
    if (strcmp(sub, "role") == 0) {
        char tenant[64], *spec;
        const char *role;

        if (argc != 3) {
            fputs(cmd_user_help, stderr);
            store_user_free(&u);
            return 2;
        }
        spec = xasprintf("%s:%s", argv[1], argv[2]);
        if (cmd_user_parse_role(st, spec, tenant, sizeof(tenant), &role) == 0) {
            if (store_role_set(st, u.id, tenant, strcmp(role, "none") ? role : NULL, &err) == 0) {
                char detail[64];

                snprintf(detail, sizeof(detail), "{\"role\":\"%s\"}", role);
                cmd_user_audit(st, strcmp(tenant, "*") ? tenant : NULL, "user.role", name, detail);
                printf("user %s: %s in %s\n", name, role, tenant);
                rc = 0;
            }
        }
        free(spec);
    } else if (argc != 1) {
        fputs(cmd_user_help, stderr);
        rc = 2;
    } else if (strcmp(sub, "disable") == 0 || strcmp(sub, "enable") == 0) {
        int off = strcmp(sub, "disable") == 0;

        if (store_user_set_disabled(st, u.id, off, &err) == 0 &&
            (!off || store_session_delete_user(st, u.id, &err) == 0)) {
            cmd_user_audit(st, NULL, off ? "user.disable" : "user.enable", name, NULL);
            printf("user %s %s\n", name, off ? "disabled (sessions ended)" : "enabled");
            rc = 0;
        }
    } else if (strcmp(sub, "unlock") == 0) {
        if (store_user_set_failures(st, u.id, 0, 0, &err) == 0) {
            cmd_user_audit(st, NULL, "user.unlock", name, NULL);
            printf("user %s unlocked\n", name);
            rc = 0;
        }
    } else if (strcmp(sub, "reset-totp") == 0) {
        char secret[TOTP_SECRET_CHARS + 1], *sealed = NULL;

        if (totp_new_secret(secret) == 0 && (sealed = cmd_user_seal(cfg, secret, &err)) != NULL &&
            store_user_set_totp(st, u.id, sealed, &err) == 0 &&
            store_session_delete_user(st, u.id, &err) == 0) {
            cmd_user_audit(st, NULL, "user.reset_totp", name, NULL);
            printf("user %s: new TOTP secret, sessions ended\n", name);
            rc = cmd_user_enrol(st, cfg, &u, secret);
        }
        free(sealed);
    } else if (strcmp(sub, "password") == 0) {
        struct auth_cost cost = api_cost(api_conf(cfg));
        char *pw = cmd_user_read_password("new password: "), *hash = NULL;

        if (auth_password_check(pw, name, &err) == 0 &&
            auth_password_hash(pw, &cost, &hash, &err) == 0 &&
            store_user_set_password(st, u.id, hash, &err) == 0 &&
            store_session_delete_user(st, u.id, &err) == 0) {
            cmd_user_audit(st, NULL, "user.password", name, NULL);
            printf("user %s: new password, sessions ended\n", name);
            rc = 0;
        }
        free(pw);
        free(hash);
    } else {
        fputs(cmd_user_help, stderr);
        rc = 2;
    }
    if (err != NULL) {
        cmd_fail("%s", err);
        free(err);
    }
    store_user_free(&u);
    return rc;
}

static int
cmd_user_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "role", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct cmd_user_opts o;
    struct config cfg;
    struct store *st;
    const char *sub;
    int rc, r;

    memset(&o, 0, sizeof(o));
    o.config = cmd_default_config();
    r = cmd_parse_opts(argc, argv, lo, "h", cmd_user_opt, &o);
    if (r != 0 || optind >= argc) {
        fputs(cmd_user_help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    sub = argv[optind];
    if ((strcmp(sub, "list") == 0) != (optind + 1 == argc) ||
        (strcmp(sub, "add") == 0 && optind + 2 != argc)) {
        fputs(cmd_user_help, stderr);
        return 2;
    }
    if (cmd_open_store(o.config, &cfg, &st) == -1) {
        return 1;
    }
    if (strcmp(sub, "list") == 0) {
        rc = cmd_user_list(st);
    } else if (strcmp(sub, "add") == 0) {
        rc = cmd_user_add(st, &cfg, &o, argv[optind + 1]);
    } else {
        rc = cmd_user_change(st, &cfg, sub, argc - optind - 1, argv + optind + 1);
    }
    store_close(st);
    config_free(&cfg);
    return rc;
}

const struct cmd_entry cmd_user_entry = {
    .name = "user",
    .usage = "user",
    .summary = "people: add, list, disable, reset TOTP, roles",
    .exec = cmd_user_exec,
};

static const char cmd_allow_help[] =
    "usage: kagari allow list\n"
    "       kagari allow add|remove TENANT CIDR\n"
    "The addresses the people's API serves a tenant's users from (IPv4 or IPv6, a block\n"
    "such as 192.0.2.0/24 or one address). A tenant without entries is served from\n"
    "anywhere; TENANT '*' is the list for platform operators.\n"
    "  --config FILE   configuration (default $KAGARI_CONFIG or kagari.conf.lua)\n";

static int
cmd_allow_exec(int argc, char **argv)
{
    static const struct option lo[] = {
        { "config", required_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    const char *config = cmd_default_config();
    struct config cfg;
    struct store *st;
    const char *sub;
    char *err = NULL;
    int rc = 1;
    int r = cmd_parse_opts(argc, argv, lo, "h", cmd_config_opt, &config);

    if (r != 0 || optind >= argc) {
        fputs(cmd_allow_help, r == 1 ? stdout : stderr);
        return r == 1 ? 0 : 2;
    }
    sub = argv[optind];
    if (strcmp(sub, "list") == 0 ? optind + 1 != argc : optind + 3 != argc) {
        fputs(cmd_allow_help, stderr);
        return 2;
    }
    if (cmd_open_store(config, &cfg, &st) == -1) {
        return 1;
    }
    if (strcmp(sub, "list") == 0) {
        struct store_allow *v = NULL;
        size_t n = 0;

        if (store_allow_list(st, &v, &n, &err) == 0) {
            printf("%-24s %s\n", "TENANT", "CIDR");
            for (size_t i = 0; i < n; i++) {
                printf("%-24s %s\n", v[i].tenant, v[i].cidr);
            }
            rc = 0;
        }
        free(v);
    } else if (strcmp(sub, "add") == 0 || strcmp(sub, "remove") == 0) {
        const char *tenant = argv[optind + 1], *text = argv[optind + 2];
        struct cidr c;
        char detail[128];

        snprintf(detail, sizeof(detail), "{\"cidr\":\"%s\"}", text);
        if (strcmp(sub, "add") == 0) {
            if (cidr_parse(text, &c, &err) == 0 && store_allow_add(st, tenant, text, &err) == 0) {
                cmd_user_audit(st, strcmp(tenant, "*") ? tenant : NULL, "allowlist.add", tenant,
                               detail);
                printf("allow %s from %s\n", tenant, text);
                rc = 0;
            }
        } else {
            r = store_allow_remove(st, tenant, text, &err);
            if (r == 1) {
                cmd_user_audit(st, strcmp(tenant, "*") ? tenant : NULL, "allowlist.remove", tenant,
                               detail);
                printf("removed %s from %s\n", text, tenant);
                rc = 0;
            } else if (r == 0) {
                cmd_fail("%s has no entry %s", tenant, text);
            }
        }
    } else {
        fputs(cmd_allow_help, stderr);
        rc = 2;
    }
    if (err != NULL) {
        cmd_fail("%s", err);
        free(err);
    }
    store_close(st);
    config_free(&cfg);
    return rc;
}

const struct cmd_entry cmd_allow_entry = {
    .name = "allow",
    .usage = "allow",
    .summary = "address allow-lists of the people's API",
    .exec = cmd_allow_exec,
};
