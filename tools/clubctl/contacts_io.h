/*
 * contacts_io.h - `clubctl contacts import` and `contacts export`
 * (cmd_contacts_io.c), as rows of cmd_contacts.c's command table.
 */
#ifndef CLUBCTL_CONTACTS_IO_H
#define CLUBCTL_CONTACTS_IO_H

#include "clubctl.h"

extern const struct ctl_opt ctl_import_opts[];
extern const struct ctl_opt ctl_export_opts[];
int ctl_contacts_import(struct ctl *c, const struct ctl_args *a);
int ctl_contacts_export(struct ctl *c, const struct ctl_args *a);

#define CTL_IMPORT_SUMMARY "create/update contacts from a CSV or NDJSON file"
#define CTL_IMPORT_HELP                                                                            \
	"Streams FILE (- for stdin) to POST /v1/contacts/import without loading it into\n"         \
	"memory, in requests of --batch-rows rows (default 50000), so a long import shows\n"       \
	"the rows the server took and the errors so far.  CSV files (by extension, or\n"           \
	"--format csv) need a header row; columns named like contact fields (name,\n"              \
	"first_name, last_name, phone, email, chat, lang, tz, tags, attrs.KEY) are used as\n"      \
	"they are, others with --map COLUMN=FIELD (repeat it, or separate pairs with\n"            \
	"commas).  NDJSON lines are contact objects (a line with \"id\" updates that\n"            \
	"contact).  A row updates the contact owning one of its addresses (--dedupe\n"             \
	"narrows which, or 'none'), or creates one.  On a terminal a progress bar shows\n"         \
	"bytes and rows, rate, ETA and errors; otherwise a line every --progress-interval.\n"      \
	"At the end: the summary and the refused rows (row, column, field, reason).  Exits\n"      \
	"1 when any row was refused."

#define CTL_EXPORT_SUMMARY "write every contact, or a segment's, as CSV or NDJSON"
#define CTL_EXPORT_HELP                                                                            \
	"Streams GET /v1/contacts/export (or /v1/segments/ID/export with --segment) to\n"          \
	"stdout or -o FILE (created with mode 0600: it holds personal data).  CSV columns:\n"      \
	"id, name, first_name, last_name, phone, email, chat, lang, tz, tags (a;b), attrs\n"       \
	"(JSON), preferences (JSON), created_at, updated_at - the same file imports back\n"        \
	"with `contacts import`.  --bom adds a UTF-8 byte order mark for spreadsheet\n"            \
	"programs that need it to show Persian text."

#endif
