#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

void pm_store_init(Store *s) {
        *s = (Store){ 0 };
        pm_hashmap_init(&s->by_id);
        pm_hashmap_init(&s->by_name);
}

void pm_store_done(Store *s) {
        while (s->first)
                pm_store_remove(s, s->first);
        pm_hashmap_done(&s->by_id);
        pm_hashmap_done(&s->by_name);
}

int pm_store_add(Store *s, App *a) {
        if (s->count >= PM_APPS_MAX)
                return -ENOSPC;
        if (pm_hashmap_get(&s->by_id, a->id) || pm_hashmap_get(&s->by_name, a->name_key))
                return -EEXIST;
        int r = pm_hashmap_put(&s->by_id, a->id, a);
        if (r < 0)
                return r;
        r = pm_hashmap_put(&s->by_name, a->name_key, a);
        if (r < 0) {
                pm_hashmap_remove(&s->by_id, a->id);
                return r;
        }
        a->removed = false;
        a->prev = s->last;
        a->next = NULL;
        if (s->last)
                s->last->next = a;
        else
                s->first = a;
        s->last = a;
        s->count++;
        pm_app_ref(a);
        return 0;
}

void pm_store_remove(Store *s, App *a) {
        if (a->removed)
                return;
        pm_hashmap_remove(&s->by_id, a->id);
        pm_hashmap_remove(&s->by_name, a->name_key);
        if (a->prev)
                a->prev->next = a->next;
        else
                s->first = a->next;
        if (a->next)
                a->next->prev = a->prev;
        else
                s->last = a->prev;
        a->prev = a->next = NULL;
        a->removed = true;
        s->count--;
        pm_app_unref(a);
}

App *pm_store_get(const Store *s, const char *id) { return pm_hashmap_get(&s->by_id, id); }

App *pm_store_get_by_name(const Store *s, const char *ns, const char *name) {
        char key[128];
        if (snprintf(key, sizeof(key), "%s/%s", ns, name) >= (int) sizeof(key))
                return NULL;
        return pm_hashmap_get(&s->by_name, key);
}

int pm_store_resolve(const Store *s, const char *ref, const char *ns, App **ret) {
        if (isempty(ref))
                return -ENOENT;
        App *a = pm_store_get(s, ref);
        if (!a)
                a = pm_store_get_by_name(s, isempty(ns) ? PM_DEFAULT_NAMESPACE : ns, ref);
        if (a) {
                *ret = a;
                return 0;
        }
        /* A prefix of an id: only hex, so no name can be mistaken for one. */
        size_t n = strlen(ref);
        if (n > PM_APP_ID_LEN || strspn(ref, "0123456789abcdef") != n)
                return -ENOENT;
        App *found = NULL;
        for (App *i = s->first; i; i = i->next)
                if (strncmp(i->id, ref, n) == 0) {
                        if (found)
                                return -ENOTUNIQ;
                        found = i;
                }
        if (!found)
                return -ENOENT;
        *ret = found;
        return 0;
}
