/* mock_intune.c: Intune managedDevices through Graph (reference section 6): list with the
 * connectors' $filter shapes, get, and the fire-and-forget device actions whose
 * deviceActionResults go pending -> done after poll_steps reads of the device. */
#include "tests/mock/mock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "engine/json.h"

/* Actions and the body members each one takes (NULL: no body, or {}). */
static const struct {
    const char *name;
    const char *const members[5];
} actions[] = {
    { "remoteLock", { NULL } },
    { "retire", { NULL } },
    { "wipe",
      { "keepEnrollmentData", "keepUserData", "macOsUnlockCode", "persistEsimDataPlan", NULL } },
    { "syncDevice", { NULL } },
    { "rebootNow", { NULL } },
    { "shutDown", { NULL } },
    { "windowsDefenderScan", { "quickScan", NULL } },
    { "windowsDefenderUpdateSignatures", { NULL } },
    { "locateDevice", { NULL } },
    { "disableLostMode", { NULL } },
    { "resetPasscode", { NULL } },
    { "bypassActivationLock", { NULL } },
    { "cleanWindowsDevice", { "keepUserData", NULL } },
};

/* A device as a reader sees it: each read counts; results started N reads ago are done. */
static cJSON *
render_device(void *item, struct mreq *r, void *ctx)
{
    struct m_device *d = item;
    cJSON *res = json_get(d->obj, "deviceActionResults");
    char now[32];

    (void)r;
    (void)ctx;
    d->reads++;
    mock_fmt_now(now);
    for (size_t i = 0; i < d->nres; i++) {
        cJSON *it = cJSON_GetArrayItem(res, (int)i);

        if (it != NULL &&
            strcmp(jstr(it, "actionState") ? jstr(it, "actionState") : "", "pending") == 0 &&
            d->reads - d->res[i].at_read >= (unsigned long)mock.cfg.poll_steps) {
            jset_str(it, "actionState", "done");
            jset_str(it, "lastUpdatedDateTime", now);
            if (strcmp(d->res[i].name, "syncDevice") == 0) {
                jset_str(d->obj, "lastSyncDateTime", now);
            }
        }
    }
    return cJSON_Duplicate(d->obj, 1);
}

static const struct fprop device_filter[] = {
    { "userPrincipalName", FT_STR, OP_EQ }, { "deviceName", FT_STR, OP_EQ },
    { "azureADDeviceId", FT_STR, OP_EQ },   { "operatingSystem", FT_STR, OP_EQ },
    { "complianceState", FT_STR, OP_EQ },   { NULL, 0, 0 },
};

static void
devices_list(struct mreq *r)
{
    const char *text = mhttp_param(r->h, "$filter");
    struct filter f;
    struct mvec hits = { 0 };
    char *err = NULL;

    memset(&f, 0, sizeof(f));
    if (text != NULL && filter_parse(text, device_filter, &f, &err) == -1) {
        mreq_intune_error(r, 400, "BadRequest", "Invalid filter clause: %s", err);
        free(err);
        return;
    }
    for (size_t i = 0; i < mock.devices.n; i++) {
        struct m_device *d = mock.devices.v[i];

        if (filter_match(&f, d->obj)) {
            mvec_push(&hits, d);
        }
    }
    mock_page(r, hits.v, hits.n, 1000, 1000, "deviceManagement/managedDevices", render_device,
              NULL);
    mvec_free(&hits);
    filter_free(&f);
}

static struct m_device *
find_device(struct mreq *r)
{
    struct m_device *d = mmap_get(&mock.device_map, r->cap[0]);

    if (d == NULL) {
        mreq_intune_error(r, 404, "ResourceNotFound", "Resource not found");
    }
    return d;
}

static void
devices_get(struct mreq *r)
{
    struct m_device *d = find_device(r);

    if (d != NULL) {
        mreq_json(r, 200, render_device(d, r, NULL));
    }
}

/* POST .../managedDevices/{id}/<action> -> 204; the result goes into deviceActionResults
 * as pending (replacing an earlier result of the same action). */
static void
devices_action(struct mreq *r)
{
    struct m_device *d;
    cJSON *body, *it, *res, *item;
    int k = -1;
    char now[32];
    size_t slot;

    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++) {
        if (strcmp(actions[i].name, r->cap[1]) == 0) {
            k = (int)i;
        }
    }
    if (k < 0) {
        mreq_intune_error(r, 400, "BadRequest", "Resource not found for the segment '%s'.",
                          r->cap[1]);
        return;
    }
    if ((d = find_device(r)) == NULL || (body = mreq_body_object(r, 1, "BadRequest")) == NULL) {
        return;
    }
    cJSON_ArrayForEach(it, body)
    {
        int ok = 0;

        for (size_t i = 0; actions[k].members[i] != NULL; i++) {
            ok |= strcmp(actions[k].members[i], it->string) == 0;
        }
        if (!ok || (strcmp(it->string, "macOsUnlockCode") == 0 ? !cJSON_IsString(it)
                                                               : !cJSON_IsBool(it))) {
            mreq_intune_error(r, 400, "BadRequest", "Invalid parameter '%s' for action %s.",
                              it->string, actions[k].name);
            cJSON_Delete(body);
            return;
        }
    }
    cJSON_Delete(body);
    mock_fmt_now(now);
    res = json_get(d->obj, "deviceActionResults");
    for (slot = 0; slot < d->nres; slot++) {
        if (strcmp(d->res[slot].name, actions[k].name) == 0) {
            break;
        }
    }
    item = cJSON_CreateObject();
    cJSON_AddStringToObject(item, "actionName", actions[k].name);
    cJSON_AddStringToObject(item, "actionState", "pending");
    cJSON_AddStringToObject(item, "startDateTime", now);
    cJSON_AddStringToObject(item, "lastUpdatedDateTime", now);
    if (slot < d->nres) {
        cJSON_ReplaceItemInArray(res, (int)slot, item);
    } else {
        cJSON_AddItemToArray(res, item);
        d->res = xrealloc(d->res, (d->nres + 1) * sizeof(*d->res));
        snprintf(d->res[slot].name, sizeof(d->res[slot].name), "%s", actions[k].name);
        d->nres++;
    }
    d->res[slot].at_read = d->reads;
    if (strcmp(actions[k].name, "wipe") == 0) {
        jset_str(d->obj, "managementState", "wipePending");
    } else if (strcmp(actions[k].name, "retire") == 0) {
        jset_str(d->obj, "managementState", "retirePending");
    }
    if (d->counts == NULL) {
        d->counts = cJSON_CreateObject();
    }
    it = json_get(d->counts, actions[k].name);
    if (it != NULL) {
        cJSON_SetNumberValue(it, it->valuedouble + 1);
    } else {
        cJSON_AddNumberToObject(d->counts, actions[k].name, 1);
    }
    mreq_empty(r, 204);
}

#define DEV_READ                                                                                   \
    "DeviceManagementManagedDevices.Read.All|DeviceManagementManagedDevices.ReadWrite.All|"        \
    "DeviceManagementManagedDevices.PrivilegedOperations.All"

const struct route intune_routes[] = {
    { "GET", "/v1.0/deviceManagement/managedDevices", SVC_INTUNE, "managedDevices.list",
      devices_list, DEV_READ, LIM_NONE, LIM_NONE },
    { "GET", "/v1.0/deviceManagement/managedDevices/*", SVC_INTUNE, "managedDevices.get",
      devices_get, DEV_READ, LIM_NONE, LIM_NONE },
    { "POST", "/v1.0/deviceManagement/managedDevices/*/*", SVC_INTUNE, "managedDevices.action",
      devices_action, "DeviceManagementManagedDevices.PrivilegedOperations.All", LIM_INTUNE_WRITES,
      LIM_NONE },
    { NULL, NULL, SVC_INTUNE, NULL, NULL, NULL, LIM_NONE, LIM_NONE },
};
