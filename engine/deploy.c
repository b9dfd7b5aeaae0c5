/* deploy.c: recording playbook deployments in the tenant databases. */
#include "engine/deploy.h"

#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/log.h"
#include "engine/loop.h"
#include "engine/tenant.h"

int
deploy_record(struct store_tenant *t, const struct playbook *pb, int64_t when_ms, const char *by,
              const char *via, char **errp)
{
    if (store_playbook_put(t, pb->hash, pb->name, pb->source, pb->len, errp) == -1) {
        return -1;
    }
    for (size_t i = 0; i < pb->nlibs; i++) {
        if (store_playbook_lib_put(t, pb->hash, pb->libs[i].name, pb->libs[i].source,
                                   pb->libs[i].len, errp) == -1) {
            return -1;
        }
    }
    return store_deploy_record(t, pb->name, pb->hash, when_ms, by, via, errp) == -1 ? -1 : 0;
}

void
deploy_record_loaded(const struct playbook_set *set)
{
    int64_t now = util_now_ms();

    for (struct tenant *t = tenants_first(); t != NULL; t = t->next) {
        for (size_t i = 0; i < set->n; i++) {
            struct playbook *pb = set->v[i];
            char *err = NULL;

            /* tenant_save_version keeps the version in memory too, so a run that starts
             * with it does not store it again. */
            if (loop_write(t->db, &err) == -1 || tenant_save_version(t, pb, &err) == -1 ||
                store_deploy_record(t->db, pb->name, pb->hash, now, NULL, "reload", &err) == -1) {
                log_warn("playbook.deploy_not_recorded tenant=%s name=%s version=%.12s error=%s",
                         t->id, pb->name, pb->hash, log_quote(err ? err : "?"));
                free(err);
            }
        }
    }
}

/* A name fit for the record: printable ASCII without spaces, at most 64 bytes. */
static int
name_ok(const char *s)
{
    size_t n = s != NULL ? strlen(s) : 0;

    if (n == 0 || n > 64) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= ' ' || s[i] > '~') {
            return 0;
        }
    }
    return 1;
}

char *
deploy_os_user(void)
{
    struct passwd *pw = getpwuid(getuid());
    const char *sudo = getenv("SUDO_USER");
    char uid[32];
    const char *me = pw != NULL && name_ok(pw->pw_name) ? pw->pw_name : NULL;

    if (me == NULL) {
        snprintf(uid, sizeof(uid), "uid %ld", (long)getuid());
        me = uid;
    }
    if (name_ok(sudo) && strcmp(sudo, me) != 0) {
        return xasprintf("%s (sudo as %s)", sudo, me);
    }
    return xstrdup(me);
}
