/* api_login.h: the people's API routes for credentials: login (password + TOTP or a
 * recovery code, first-login TOTP enrolment), logout, who am I, personal API tokens.
 * Each handler owns the request and answers it (engine/apireq.h). */
#ifndef KAGARI_API_LOGIN_H
#define KAGARI_API_LOGIN_H

#include "engine/apireq.h"

#define API_SESSION_COOKIE "__Host-kagari_session"

void api_login(struct api_req *r);          /* POST /api/v1/login */
void api_logout(struct api_req *r);         /* POST /api/v1/logout */
void api_me(struct api_req *r);             /* GET /api/v1/me */
void api_tokens_list(struct api_req *r);    /* GET /api/v1/tokens */
void api_token_create(struct api_req *r);   /* POST /api/v1/tokens */
void api_token_revoke(struct api_req *r);   /* DELETE /api/v1/tokens/{id} */
void api_recovery_codes(struct api_req *r); /* POST /api/v1/me/recovery-codes */
void api_prefs_get(struct api_req *r);      /* GET /api/v1/me/preferences */
void api_prefs_set(struct api_req *r);      /* POST /api/v1/me/preferences */

#endif
