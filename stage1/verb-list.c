/* pm-stage1 list [--json]
 *
 * The pods that have a state directory on this node: running (their
 * systemd-nspawn is alive) or dead (directories left behind; `stop` removes
 * them). The table has NAME STATE PID SOCKET, PID being systemd-nspawn's;
 * --json prints an array of objects with name, state, pid, leader_pid,
 * socket and state_dir (pids are null when dead). */
#include <getopt.h>
#include <json-c/json.h>

#include "errmsg.h"
#include "pod.h"
#include "proc.h"
#include "verbs.h"

typedef struct Row {
        PmPod *pod;
        PmPodState state;
        pid_t pid;
        pid_t leader;
} Row;

static json_object *row_to_json(const Row *row) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "name", json_object_new_string(row->pod->name)) < 0 ||
            json_object_object_add(o, "state", json_object_new_string(pm_pod_state_to_string(row->state))) < 0 ||
            json_object_object_add(o, "pid", row->pid > 0 ? json_object_new_int(row->pid) : NULL) < 0 ||
            json_object_object_add(o, "leader_pid", row->leader > 0 ? json_object_new_int(row->leader) : NULL) < 0 ||
            json_object_object_add(o, "socket", json_object_new_string(row->pod->socket_path)) < 0 ||
            json_object_object_add(o, "state_dir", json_object_new_string(row->pod->state_dir)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static int print_json(const Row *rows, size_t n) {
        json_object *array = json_object_new_array();

        if (!array)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = row_to_json(&rows[i]);

                if (!o || json_object_array_add(array, o) < 0) {
                        json_object_put(o);
                        json_object_put(array);
                        return -ENOMEM;
                }
        }
        /* json-c spells an empty pretty array "[\n]" */
        puts(n == 0 ? "[]"
                    : json_object_to_json_string_ext(array, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
        json_object_put(array);
        return 0;
}

static void print_table(const Row *rows, size_t n) {
        int width = (int) strlen("NAME");

        for (size_t i = 0; i < n; i++)
                if ((int) strlen(rows[i].pod->name) > width)
                        width = (int) strlen(rows[i].pod->name);

        printf("%-*s %-7s %-7s %s\n", width, "NAME", "STATE", "PID", "SOCKET");
        for (size_t i = 0; i < n; i++) {
                char pid[16] = "-";

                if (rows[i].pid > 0)
                        snprintf(pid, sizeof(pid), "%d", (int) rows[i].pid);
                printf("%-*s %-7s %-7s %s\n", width, rows[i].pod->name, pm_pod_state_to_string(rows[i].state), pid,
                       rows[i].pod->socket_path);
        }
}

int pm_verb_list(int argc, char *argv[]) {
        static const struct option options[] = {
                { "json", no_argument, NULL, 'j' },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_strv_free_ char **names = NULL;
        _cleanup_free_ char *error = NULL;
        _cleanup_free_ Row *rows = NULL;
        bool json = false;
        size_t n = 0;
        int c, r;

        while ((c = getopt_long(argc, argv, "jh", options, NULL)) >= 0)
                switch (c) {
                case 'j':
                        json = true;
                        break;
                case 'h':
                        printf("Usage: pm-stage1 list [--json]\n");
                        return PM_EXIT_OK;
                default:
                        return PM_EXIT_USAGE;
                }
        if (optind < argc)
                return pm_usage_error("list", "unexpected argument '%s'", argv[optind]);

        r = pm_pod_list_names(&names, &error);
        if (r < 0)
                goto fail;
        while (names[n])
                n++;

        rows = calloc(n ? n : 1, sizeof(Row));
        if (!rows) {
                r = -ENOMEM;
                goto fail;
        }
        for (size_t i = 0; i < n; i++) {
                _cleanup_close_ int leader_fd = -1;

                r = pm_pod_new(names[i], false, &rows[i].pod, &error);
                if (r < 0)
                        break;
                rows[i].state = pm_pod_state(rows[i].pod, &rows[i].pid);
                if (rows[i].state == PM_POD_STATE_RUNNING)
                        leader_fd = pm_pod_open_leader(rows[i].pod, rows[i].pid, &rows[i].leader);
        }

        if (r >= 0 && json)
                r = print_json(rows, n);
        else if (r >= 0)
                print_table(rows, n);

        for (size_t i = 0; i < n; i++)
                pm_pod_free(rows[i].pod);
        if (r < 0)
                goto fail;
        return PM_EXIT_OK;

fail:
        if (error)
                pm_log_error(r, "%s", error);
        else
                pm_log_error(r, "cannot list pods: %m");
        return PM_EXIT_FAILURE;
}
