/* A string-keyed hash map with chaining. Keys are borrowed: the caller keeps
 * each key alive while it is in the map (usually it lives in the value). */
#pragma once

#include <stdbool.h>
#include <stddef.h>

typedef struct PmHashEntry PmHashEntry;

typedef struct PmHashmap {
        PmHashEntry **buckets;
        size_t n_buckets;
        size_t size;
} PmHashmap;

void pm_hashmap_init(PmHashmap *m);
void pm_hashmap_done(PmHashmap *m);
/* -EEXIST when key is already present, -ENOMEM. */
int pm_hashmap_put(PmHashmap *m, const char *key, void *value);
void *pm_hashmap_get(const PmHashmap *m, const char *key);
/* Returns the removed value, NULL if key was absent. */
void *pm_hashmap_remove(PmHashmap *m, const char *key);
static inline size_t pm_hashmap_size(const PmHashmap *m) { return m->size; }
/* Calls fn on every value, in no order. fn must not change the map. */
void pm_hashmap_foreach(const PmHashmap *m, void (*fn)(void *value, void *userdata), void *userdata);
