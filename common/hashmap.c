#include "hashmap.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct PmHashEntry {
        const char *key;
        void *value;
        uint32_t hash;
        PmHashEntry *next;
};

/* FNV-1a: keys are short (ids, names, object paths). */
static uint32_t hash_string(const char *s) {
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (uint8_t) *s) * 16777619u;
        return h;
}

void pm_hashmap_init(PmHashmap *m) { *m = (PmHashmap){ 0 }; }

void pm_hashmap_done(PmHashmap *m) {
        for (size_t i = 0; i < m->n_buckets; i++)
                for (PmHashEntry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        free(e);
                }
        free(m->buckets);
        *m = (PmHashmap){ 0 };
}

static int grow(PmHashmap *m) {
        size_t n = m->n_buckets ? m->n_buckets * 2 : 64;
        PmHashEntry **b = calloc(n, sizeof(*b));
        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_buckets; i++)
                for (PmHashEntry *e = m->buckets[i], *next; e; e = next) {
                        next = e->next;
                        e->next = b[e->hash & (n - 1)];
                        b[e->hash & (n - 1)] = e;
                }
        free(m->buckets);
        m->buckets = b;
        m->n_buckets = n;
        return 0;
}

static PmHashEntry **find_slot(const PmHashmap *m, const char *key, uint32_t h) {
        PmHashEntry **p = &m->buckets[h & (m->n_buckets - 1)];
        for (; *p; p = &(*p)->next)
                if ((*p)->hash == h && strcmp((*p)->key, key) == 0)
                        break;
        return p;
}

int pm_hashmap_put(PmHashmap *m, const char *key, void *value) {
        if (m->size >= m->n_buckets) {
                int r = grow(m);
                if (r < 0)
                        return r;
        }
        uint32_t h = hash_string(key);
        PmHashEntry **p = find_slot(m, key, h);
        if (*p)
                return -EEXIST;
        PmHashEntry *e = malloc(sizeof(*e));
        if (!e)
                return -ENOMEM;
        *e = (PmHashEntry){ .key = key, .value = value, .hash = h };
        e->next = m->buckets[h & (m->n_buckets - 1)];
        m->buckets[h & (m->n_buckets - 1)] = e;
        m->size++;
        return 0;
}

void *pm_hashmap_get(const PmHashmap *m, const char *key) {
        if (m->size == 0)
                return NULL;
        PmHashEntry **p = find_slot(m, key, hash_string(key));
        return *p ? (*p)->value : NULL;
}

void *pm_hashmap_remove(PmHashmap *m, const char *key) {
        if (m->size == 0)
                return NULL;
        PmHashEntry **p = find_slot(m, key, hash_string(key));
        PmHashEntry *e = *p;
        if (!e)
                return NULL;
        *p = e->next;
        void *v = e->value;
        free(e);
        m->size--;
        return v;
}

void pm_hashmap_foreach(const PmHashmap *m, void (*fn)(void *value, void *userdata), void *userdata) {
        for (size_t i = 0; i < m->n_buckets; i++)
                for (PmHashEntry *e = m->buckets[i]; e; e = e->next)
                        fn(e->value, userdata);
}
