/* approval.h: approve{}, the playbook step that waits for people. It is an effect of the
 * driver (journaled, replayed, parked durably: the approval itself is a row of the
 * tenant database), decided through the people's API by persons with the role, with a
 * quorum, or by its default when its time runs out. After an approval that lists its
 * effects, the run may make only those outside calls (run_set_approved). */
#ifndef KAGARI_APPROVAL_H
#define KAGARI_APPROVAL_H

#include <stddef.h>
#include <stdint.h>

#include "engine/sandbox.h"
#include "engine/util.h"

struct tenant;

#define APPROVAL_TITLE_MAX 200
#define APPROVAL_DETAIL_MAX 4000
#define APPROVAL_EFFECTS_MAX 32
#define APPROVAL_APPROVERS_MAX 5
#define APPROVAL_TIMEOUT_MAX (30 * 86400) /* seconds */
#define APPROVAL_COMMENT_MAX 2000

/* Add the global approve to a tenant's sandbox. */
void approval_register(struct sandbox *sb);

/* Why a decision was refused: the HTTP status it maps to. */
enum approval_refusal {
    APPROVAL_NOT_FOUND = 404,
    APPROVAL_FORBIDDEN = 403, /* not the role, or the run's requester */
    APPROVAL_CONFLICT = 409,  /* decided, expired, cancelled, or this person voted already */
    APPROVAL_UNAVAILABLE = 503,
};

/* One person's decision on approval id of tenant t: approve (1) or reject (0), with a
 * comment (may be NULL). roles are the person's roles in t (names). A rejection decides
 * at once; approvals decide once `approvers` different persons approved. When it decides,
 * the waiting run continues with the decision. done(arg, ok) runs after the commit that
 * made the vote durable. 0, or -1 with *refusal and *errp (done is then not called). */
int approval_decide(struct tenant *t, int64_t id, const char *user, const char *const *roles,
                    size_t nroles, int approve, const char *comment,
                    void (*done)(void *arg, int ok), void *arg, enum approval_refusal *refusal,
                    char **errp) KG_WUR;

#endif
