/*
 * api_contacts.h - the one validator of contact input, shared by every
 * write path: POST/PATCH /v1/contacts and the NDJSON bulk upsert
 * (api_contacts.c) and the CSV/NDJSON import (api_import.c).
 */
#ifndef CLUBD_API_CONTACTS_H
#define CLUBD_API_CONTACTS_H

#include <jansson.h>

#include "config.h"
#include "store.h"

/* Why a contact was refused: an API error code, the JSON path of the field
 * ("addresses.sms", "tags[2]") and a human reason. */
struct contact_verr {
	const char *code;
	char field[96];
	char reason[200];
};

/*
 * Validate the contact object o (the API form: name, first_name,
 * last_name, lang, tz, addresses, tags, attrs, preferences) and append the
 * field/value pairs lua/contact_write.lua takes to a.  patch: a null value
 * deletes the field.  allow_id: "id" is accepted (and left to the caller).
 * 0, or -1 with e filled (a may hold some pairs then).
 */
int api_contact_pairs(const json_t *o, int patch, int allow_id, const struct config *cfg,
                      struct argv *a, struct contact_verr *e);

#endif
