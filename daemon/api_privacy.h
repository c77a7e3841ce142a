/*
 * api_privacy.h - the rights of access and erasure over HTTP
 * (api_privacy.c, docs/privacy.md).
 */
#ifndef CLUBD_API_PRIVACY_H
#define CLUBD_API_PRIVACY_H

#include "api.h"

/*
 * DELETE /v1/contacts/{id}?erase=true (called by api_contacts.c's delete
 * handler, which checked the id and the store): remove the contact and
 * everything that names it (lua/contact_erase.lua).  Replies 204, 404 or
 * 503; holds rq until then.
 */
void api_privacy_erase(struct api_req *rq, const char *id);

#endif
