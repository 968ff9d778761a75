/* The sd-bus connection to the pod's systemd, bridged to the libuv loop:
 * a poll handle on the bus fd, a timer for the bus timeout, and a prepare
 * handle that drains queued work and re-arms both before every poll. */
#include <errno.h>
#include <poll.h>

#include "log.h"
#include "manager.h"
#include "util.h"

#define PRIVATE_BUS_ADDRESS "unix:path=/run/systemd/private"

static void bus_process(Manager *m) {
        for (;;) {
                int r = sd_bus_process(m->bus, NULL);
                if (r < 0) {
                        /* The pod's systemd is gone: the pod is going down.
                         * Nothing can be served; let systemd restart us. */
                        pm_log_error("bus to systemd failed: %s", strerror(-r));
                        uv_stop(m->loop);
                        return;
                }
                if (r == 0)
                        return;
        }
}

static void on_bus_timer(uv_timer_t *t) { bus_process(t->data); }

static void on_bus_io(uv_poll_t *p, int status, int events) { bus_process(p->data); }

/* Before each poll: work that needs no I/O is done, then the poll and the
 * timer are set to what the bus waits for next. */
static void on_bus_prepare(uv_prepare_t *h) {
        Manager *m = h->data;
        bus_process(m);
        if (!m->bus)
                return;

        int e = sd_bus_get_events(m->bus);
        if (e >= 0) {
                int want = ((e & POLLIN) ? UV_READABLE : 0) | ((e & POLLOUT) ? UV_WRITABLE : 0);
                /* Re-armed only on a change: each start is an epoll_ctl. */
                if (want != m->bus_poll_events) {
                        uv_poll_start(&m->bus_poll, want, on_bus_io);
                        m->bus_poll_events = want;
                }
        }

        uint64_t usec;
        if (sd_bus_get_timeout(m->bus, &usec) >= 0 && usec != UINT64_MAX) {
                /* The timeout is absolute, on CLOCK_MONOTONIC. */
                uint64_t now = (uint64_t) pm_now_monotonic_ns() / 1000;
                uint64_t ms = usec > now ? (usec - now + 999) / 1000 : 0;
                uv_timer_start(&m->bus_timer, on_bus_timer, ms, 0);
        } else
                uv_timer_stop(&m->bus_timer);
}

static int connect_private(sd_bus **ret) {
        sd_bus *bus = NULL;
        int r = sd_bus_new(&bus);
        if (r < 0)
                return r;
        /* The private socket speaks to systemd directly: no Hello. */
        r = sd_bus_set_address(bus, PRIVATE_BUS_ADDRESS);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

int pm_bus_open(Manager *m) {
        int r = connect_private(&m->bus);
        if (r < 0) {
                pm_log_warning("cannot use systemd's private socket (%s), trying the system bus", strerror(-r));
                r = sd_bus_open_system(&m->bus);
                if (r < 0)
                        return r;
        }

        uv_poll_init(m->loop, &m->bus_poll, sd_bus_get_fd(m->bus));
        uv_timer_init(m->loop, &m->bus_timer);
        uv_prepare_init(m->loop, &m->bus_prepare);
        m->bus_poll.data = m->bus_timer.data = m->bus_prepare.data = m;
        uv_prepare_start(&m->bus_prepare, on_bus_prepare);
        return 0;
}

void pm_bus_close(Manager *m) {
        if (!m->bus)
                return;
        uv_prepare_stop(&m->bus_prepare);
        uv_close((uv_handle_t *) &m->bus_poll, NULL);
        uv_close((uv_handle_t *) &m->bus_timer, NULL);
        uv_close((uv_handle_t *) &m->bus_prepare, NULL);
        m->bus = sd_bus_flush_close_unref(m->bus);
}
