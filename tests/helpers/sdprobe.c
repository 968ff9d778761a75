/* sdprobe: looks at a pod's systemd from the node for the integration
 * tests, over the pod's private socket (/proc/<leader>/root/run/systemd/private).
 *
 *   sdprobe SOCKET watch-reloads   print "ready", count the manager's
 *                                  Reloading signals until stdin closes,
 *                                  then print the count
 *   sdprobe SOCKET loaded UNIT     print "loaded" or "not-loaded" (GetUnit,
 *                                  which never loads a unit itself) */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

static int connect_to(const char *socket_path, sd_bus **ret) {
        sd_bus *bus = NULL;
        char address[4200];
        snprintf(address, sizeof(address), "unix:path=%s", socket_path);
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

static int on_reloading(sd_bus_message *m, void *userdata, sd_bus_error *e) {
        int active = 0;
        if (sd_bus_message_read(m, "b", &active) >= 0 && active)
                (*(unsigned *) userdata)++;
        return 0;
}

static int watch_reloads(sd_bus *bus) {
        unsigned count = 0;
        int r = sd_bus_match_signal(bus, NULL, NULL, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                    "Reloading", on_reloading, &count);
        if (r >= 0)
                r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                       "org.freedesktop.systemd1.Manager", "Subscribe", NULL, NULL, "");
        if (r < 0)
                return r;
        printf("ready\n");
        fflush(stdout);
        for (;;) {
                while ((r = sd_bus_process(bus, NULL)) > 0)
                        ;
                if (r < 0)
                        return r;
                struct pollfd p[2] = {
                        { .fd = sd_bus_get_fd(bus), .events = (short) sd_bus_get_events(bus) },
                        { .fd = STDIN_FILENO, .events = POLLIN },
                };
                if (poll(p, 2, 1000) < 0 && errno != EINTR)
                        return -errno;
                if (p[1].revents) {
                        char buf[64];
                        if (read(STDIN_FILENO, buf, sizeof(buf)) <= 0)
                                break;
                }
        }
        /* Drain what already arrived. */
        while (sd_bus_process(bus, NULL) > 0)
                ;
        printf("%u\n", count);
        return 0;
}

static int unit_loaded(sd_bus *bus, const char *unit) {
        sd_bus_error error = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = NULL;
        int r = sd_bus_call_method(bus, "org.freedesktop.systemd1", "/org/freedesktop/systemd1",
                                   "org.freedesktop.systemd1.Manager", "GetUnit", &error, &reply, "s", unit);
        if (r >= 0)
                printf("loaded\n");
        else if (sd_bus_error_has_name(&error, "org.freedesktop.systemd1.NoSuchUnit"))
                printf("not-loaded\n"), r = 0;
        sd_bus_error_free(&error);
        sd_bus_message_unref(reply);
        return r;
}

int main(int argc, char **argv) {
        if (argc < 3) {
                fprintf(stderr, "usage: sdprobe SOCKET watch-reloads | loaded UNIT\n");
                return 2;
        }
        sd_bus *bus = NULL;
        int r = connect_to(argv[1], &bus);
        if (r < 0) {
                fprintf(stderr, "sdprobe: cannot connect to %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        if (strcmp(argv[2], "watch-reloads") == 0)
                r = watch_reloads(bus);
        else if (strcmp(argv[2], "loaded") == 0 && argc == 4)
                r = unit_loaded(bus, argv[3]);
        else {
                fprintf(stderr, "sdprobe: unknown command %s\n", argv[2]);
                r = -EINVAL;
        }
        sd_bus_flush_close_unref(bus);
        if (r < 0)
                fprintf(stderr, "sdprobe: %s\n", strerror(-r));
        return r < 0 ? 1 : 0;
}
