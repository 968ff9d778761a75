/* The app store: every app of the pod, indexed by id, by "<ns>/<name>", and
 * kept in creation order for List. Lookups are O(1) but for id prefixes. */
#pragma once

#include <stddef.h>

#include "app.h"
#include "hashmap.h"

#define PM_APPS_MAX 10000

typedef struct Store {
        PmHashmap by_id;
        PmHashmap by_name;
        App *first, *last;
        size_t count;
} Store;

void pm_store_init(Store *s);
void pm_store_done(Store *s);
/* Takes a reference. -EEXIST if the id or the name is taken, -ENOSPC when full. */
int pm_store_add(Store *s, App *a);
/* Drops the store's reference. */
void pm_store_remove(Store *s, App *a);
App *pm_store_get(const Store *s, const char *id);
App *pm_store_get_by_name(const Store *s, const char *ns, const char *name);
/* An id, a unique id prefix, or a name in ns. -ENOENT, or -ENOTUNIQ for an
 * ambiguous prefix. */
int pm_store_resolve(const Store *s, const char *ref, const char *ns, App **ret);
