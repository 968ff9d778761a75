#include "logkeep.h"

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "hashmap.h"
#include "log.h"
#include "util.h"

#define IO_TIMEOUT_S 2
#define CLIENTS_MAX 8
#define MSG_MAX (PM_LOGKEEP_NAME_MAX + 8)

/* ---- messages -------------------------------------------------------------- */

static bool name_valid(const char *s) {
        size_t n = strlen(s);
        return n > 0 && n <= PM_LOGKEEP_NAME_MAX && strspn(s, "0123456789abcdefghijklmnopqrstuvwxyz.") == n;
}

/* One message, with fd attached when fd >= 0. */
static int send_msg(int sock, const char *text, int fd) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int))];
        } control = { 0 };
        struct iovec iov = { (void *) text, strlen(text) };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (fd >= 0) {
                mh.msg_control = &control;
                mh.msg_controllen = sizeof(control);
                struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
                c->cmsg_level = SOL_SOCKET;
                c->cmsg_type = SCM_RIGHTS;
                c->cmsg_len = CMSG_LEN(sizeof(int));
                memcpy(CMSG_DATA(c), &fd, sizeof(int));
        }
        return sendmsg(sock, &mh, MSG_NOSIGNAL) < 0 ? -errno : 0;
}

/* One message into text (NUL-terminated) and its fd, if one came (any more
 * are closed). Returns its length, 0 at the end of the connection, or a
 * negative errno. */
static ssize_t recv_msg(int sock, char text[static MSG_MAX + 1], int *ret_fd) {
        union {
                struct cmsghdr align;
                char buf[CMSG_SPACE(sizeof(int) * 4)];
        } control;
        struct iovec iov = { text, MSG_MAX };
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = &control, .msg_controllen = sizeof(control) };
        *ret_fd = -1;
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
        if (n < 0)
                return -errno;
        text[n] = '\0';
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
                if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                        continue;
                size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
                for (size_t i = 0; i < k; i++) {
                        int fd;
                        memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                        if (*ret_fd < 0)
                                *ret_fd = fd;
                        else
                                close(fd);
                }
        }
        if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) && *ret_fd >= 0) {
                close(*ret_fd);
                *ret_fd = -1;
                return -EMSGSIZE;
        }
        return n;
}

static void set_timeouts(int sock) {
        struct timeval tv = { .tv_sec = IO_TIMEOUT_S };
        (void) setsockopt(sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        (void) setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

static int socket_address(const char *state_dir, struct sockaddr_un *sa) {
        *sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
        int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/" PM_LOGKEEP_SOCKET_NAME, state_dir);
        return n > 0 && (size_t) n < sizeof(sa->sun_path) ? 0 : -ENAMETOOLONG;
}

/* ---- the client side (the log daemon) --------------------------------------- */

int pm_logkeep_connect(const char *state_dir) {
        struct sockaddr_un sa;
        int r = socket_address(state_dir, &sa);
        if (r < 0)
                return r;
        int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        set_timeouts(sock);
        if (connect(sock, (struct sockaddr *) &sa, sizeof(sa)) < 0) {
                r = -errno;
                close(sock);
                return r;
        }
        return sock;
}

int pm_logkeep_keep(int sock, const char *name, int fd) {
        char text[MSG_MAX + 1];
        if (!name_valid(name))
                return -EINVAL;
        snprintf(text, sizeof(text), "keep %s", name);
        return send_msg(sock, text, fd);
}

int pm_logkeep_drop(int sock, const char *name) {
        char text[MSG_MAX + 1];
        if (!name_valid(name))
                return -EINVAL;
        snprintf(text, sizeof(text), "drop %s", name);
        return send_msg(sock, text, -1);
}

int pm_logkeep_give(int sock, void (*take)(const char *name, int fd, void *userdata), void *userdata) {
        int r = send_msg(sock, "give", -1);
        for (int given = 0; r >= 0 && given <= PM_LOGKEEP_STREAMS_MAX;) {
                char text[MSG_MAX + 1];
                int fd;
                ssize_t n = recv_msg(sock, text, &fd);
                if (n <= 0)
                        return n < 0 ? (int) n : -ECONNRESET;
                if (streq(text, "end"))
                        return given;
                if (fd >= 0 && startswith(text, "fd ") && name_valid(text + 3)) {
                        take(text + 3, fd, userdata);
                        given++;
                } else if (fd >= 0)
                        close(fd);
        }
        return r < 0 ? r : -E2BIG;
}

/* ---- the keeper ------------------------------------------------------------- */

typedef struct Kept {
        char name[PM_LOGKEEP_NAME_MAX + 1];
        int fd;
} Kept;

static PmHashmap kept; /* name -> Kept */

static void kept_drop(const char *name) {
        Kept *k = pm_hashmap_remove(&kept, name);
        if (!k)
                return;
        close(k->fd);
        free(k);
}

static void kept_put(const char *name, int fd) {
        kept_drop(name);
        Kept *k = pm_hashmap_size(&kept) < PM_LOGKEEP_STREAMS_MAX ? calloc(1, sizeof(*k)) : NULL;
        if (!k) {
                pm_log_warning("cannot keep stream %s: %zu kept already", name, pm_hashmap_size(&kept));
                close(fd);
                return;
        }
        snprintf(k->name, sizeof(k->name), "%s", name);
        k->fd = fd;
        if (pm_hashmap_put(&kept, k->name, k) < 0) {
                close(fd);
                free(k);
        }
}

typedef struct Giving {
        int client;
        int r; /* the first failure; nothing more is sent after it */
} Giving;

static void give_one(void *value, void *userdata) {
        const Kept *k = value;
        Giving *g = userdata;
        char text[MSG_MAX + 1];
        snprintf(text, sizeof(text), "fd %s", k->name);
        if (g->r >= 0)
                g->r = send_msg(g->client, text, k->fd);
}

static int give_all(int client) {
        Giving g = { .client = client };
        pm_hashmap_foreach(&kept, give_one, &g);
        return g.r < 0 ? g.r : send_msg(client, "end", -1);
}

/* One request of a client; false when the client is gone or misbehaved. */
static bool serve(int client) {
        char text[MSG_MAX + 1];
        int fd;
        ssize_t n = recv_msg(client, text, &fd);
        if (n <= 0)
                return false;
        if (startswith(text, "keep ") && fd >= 0 && name_valid(text + 5)) {
                kept_put(text + 5, fd);
                return true;
        }
        if (fd >= 0)
                close(fd);
        if (startswith(text, "drop ") && name_valid(text + 5))
                kept_drop(text + 5);
        else if (streq(text, "give"))
                return give_all(client) >= 0;
        else
                pm_log_warning("ignoring a malformed request");
        return true;
}

static int listen_on(const char *state_dir) {
        struct sockaddr_un sa;
        int r = socket_address(state_dir, &sa);
        if (r < 0)
                return r;
        r = pm_mkdir_p(state_dir, 0700);
        if (r < 0)
                return r;
        int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (sock < 0)
                return -errno;
        (void) unlink(sa.sun_path);
        if (bind(sock, (struct sockaddr *) &sa, sizeof(sa)) < 0 || listen(sock, CLIENTS_MAX) < 0) {
                r = -errno;
                close(sock);
                return r;
        }
        return sock;
}

static void accept_client(struct pollfd *pfds, size_t *n) {
        int client = accept4(pfds[0].fd, NULL, NULL, SOCK_CLOEXEC);
        if (client < 0)
                return;
        if (*n > CLIENTS_MAX) {
                close(client);
                return;
        }
        set_timeouts(client);
        pfds[(*n)++] = (struct pollfd){ .fd = client, .events = POLLIN };
}

int pm_logkeep_main(const char *state_dir) {
        pm_hashmap_init(&kept);
        int sock = listen_on(state_dir);
        if (sock < 0) {
                pm_log_error("cannot listen on %s/" PM_LOGKEEP_SOCKET_NAME ": %s", state_dir, strerror(-sock));
                return sock;
        }
        (void) sd_notify(false, "READY=1");
        struct pollfd pfds[CLIENTS_MAX + 2] = { { .fd = sock, .events = POLLIN } };
        size_t n = 1;
        for (;;) {
                if (poll(pfds, n, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        pm_log_error("poll: %s", strerror(errno));
                        return -errno;
                }
                for (size_t i = n; i-- > 1;)
                        if (pfds[i].revents && !serve(pfds[i].fd)) {
                                close(pfds[i].fd);
                                pfds[i] = pfds[--n];
                        }
                if (pfds[0].revents & POLLIN)
                        accept_client(pfds, &n);
        }
}
