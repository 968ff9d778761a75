/* The log keeper: podmutatord --logkeep, run as pm-logkeep.service.
 *
 * It holds a copy of every app stream the log daemon reads, by name, so that
 * a restarted daemon takes them back and no app loses its stdout. systemd's
 * own fd store would do the same, but it compares each new fd with every fd
 * it holds (one kcmp(2) each): with 1000 apps that cost PID 1 about 7 ms at
 * every app start. Here keeping and dropping a stream are O(1).
 *
 * The protocol is one SOCK_SEQPACKET message each on <state>/logkeep.sock:
 *   "keep NAME" with one fd   keep it (a copy under NAME replaces the old)
 *   "drop NAME"               close it
 *   "give"                    answered by "fd NAME" with the fd, one message
 *                             per stream, then "end"; the keeper keeps them
 * NAME is at most PM_LOGKEEP_NAME_MAX bytes of [0-9a-z.]. */
#pragma once

#define PM_LOGKEEP_SOCKET_NAME "logkeep.sock"
#define PM_LOGKEEP_NAME_MAX 95
#define PM_LOGKEEP_STREAMS_MAX 65536

/* The keeper daemon. Returns only on failure, logged. */
int pm_logkeep_main(const char *state_dir);

/* A connection to the keeper, whose sends and receives wait at most 2 s.
 * Returns the socket or a negative errno. */
int pm_logkeep_connect(const char *state_dir);
int pm_logkeep_keep(int sock, const char *name, int fd);
int pm_logkeep_drop(int sock, const char *name);
/* Asks for every stream kept; take() owns each fd it is given. Returns the
 * number given, or a negative errno. */
int pm_logkeep_give(int sock, void (*take)(const char *name, int fd, void *userdata), void *userdata);
