/*
 * store_privacy.h - re-sealing the personal data in Redis under another key:
 * `clubd --rotate-key OLD NEW` (store_privacy.c, docs/privacy.md).
 */
#ifndef CLUBD_STORE_PRIVACY_H
#define CLUBD_STORE_PRIVACY_H

#include <stdio.h>

#include "config.h"

/*
 * With every clubd stopped: walk the keys under cfg's prefix in batches
 * (SCAN COUNT batch) and re-seal each value sealed under OLD with NEW,
 * renaming the address reverse indexes.  OLD "none" seals a database
 * written without a key (the fields docs/privacy.md lists); NEW "none"
 * opens everything back into clear text.  OLD and NEW are secret
 * references (file, env:NAME, cred:NAME) as [privacy] key_file.
 * Re-running after an interruption continues: values already under NEW
 * are left alone.  Progress and totals go to out.  0 when every sealed
 * value is now under NEW (or clear), 1 when some value is sealed under a
 * third key or could not be opened, 2 on a usage, key or Redis error.
 */
int store_privacy_rotate(const struct config *cfg, const char *old_spec, const char *new_spec,
                         int batch, FILE *out);

#endif
