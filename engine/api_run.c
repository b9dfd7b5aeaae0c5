/* api_run.c: a person starts a playbook run on an alert through the people's API (an
 * engineer re-running a playbook after fixing it, an analyst running a response playbook
 * on an alert no trigger chose). The person is recorded as the run's requester: they can
 * never decide that run's approvals. */
#include "engine/api_run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/alert.h"
#include "engine/json.h"
#include "engine/log.h"
#include "engine/loop.h"
#include "engine/run.h"
#include "engine/tenant.h"

struct api_start {
    struct api_req *r;
    int64_t run;
    char *detail;
};

/* After the commit of the new run: audit it and answer 201. */
static void
started(void *arg, int ok)
{
    struct api_start *s = arg;
    struct api_req *r = s->r;
    char target[48];
    cJSON *o;

    snprintf(target, sizeof(target), "run:%lld", (long long)s->run);
    apireq_audit(r, r->param[0], "run.start", target, ok ? "ok" : "failed", s->detail);
    free(s->detail);
    if (!ok) {
        free(s);
        apireq_error(r, 503, "store_unavailable", "the run could not be stored; retry");
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "run_id", (double)s->run);
    cJSON_AddStringToObject(o, "tenant", r->param[0]);
    cJSON_AddNumberToObject(o, "alert_id", (double)apireq_parse_id(r->param[1]));
    cJSON_AddStringToObject(o, "requester", r->user.name);
    cJSON_AddStringToObject(o, "state", "queued");
    free(s);
    apireq_json(r, 201, o);
}

void
api_run_start(struct api_req *r)
{
    struct tenant *t = tenant_find(r->param[0]);
    int64_t alert_id = apireq_parse_id(r->param[1]);
    const char *playbook;
    cJSON *root, *d;
    struct alert a;
    struct api_start *s;
    char target[48], *err = NULL;
    int found;

    if (t == NULL || alert_id < 1) {
        apireq_not_found(r);
        return;
    }
    if ((root = apireq_body_object(r)) == NULL) {
        return;
    }
    playbook = json_get_string(root, "playbook");
    if (playbook == NULL || playbook[0] == '\0' || strlen(playbook) > 128 ||
        cJSON_GetArraySize(root) != 1) {
        cJSON_Delete(root);
        apireq_error(r, 400, "bad_request", "expected {\"playbook\": name}");
        return;
    }
    snprintf(target, sizeof(target), "alert:%lld", (long long)alert_id);
    found = store_alert_get(t->db, alert_id, &a, NULL);
    if (found != 1) {
        cJSON_Delete(root);
        if (found == 0) {
            apireq_not_found(r);
        } else {
            apireq_error(r, 503, "store_unavailable", "retry");
        }
        return;
    }
    alert_free(&a);
    d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "playbook", playbook);
    cJSON_AddNumberToObject(d, "alert", (double)alert_id);
    s = xcalloc(1, sizeof(*s));
    s->r = r;
    s->detail = json_print(d);
    cJSON_Delete(d);
    if (run_start_by(t, alert_id, playbook, r->user.name, &s->run, &err) == -1) {
        int unknown = strstr(err ? err : "", "no playbook") != NULL;

        apireq_audit(r, t->id, "run.start", target, unknown ? "refused" : "failed", s->detail);
        free(s->detail);
        free(s);
        cJSON_Delete(root);
        if (unknown) {
            apireq_error(r, 422, "unknown_playbook", err);
        } else {
            log_warn("api.run_start_failed tenant=%s error=%s", t->id, log_quote(err ? err : "?"));
            apireq_error(r, 503, "store_unavailable", "the run could not be started; retry");
        }
        free(err);
        return;
    }
    cJSON_Delete(root);
    loop_after_commit(t->db, started, s); /* run_start_by wrote in this iteration */
}
