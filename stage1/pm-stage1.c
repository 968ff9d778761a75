/* pm-stage1: starts, stops and lists PodMutator pods on this node.
 *
 * A pod is systemd booted by systemd-nspawn in a root assembled here, with
 * the PodMutator agent inside as podmutator.service. See verbs.h for the
 * verbs, pod.h for the layout on the node, root.h for what the pod boots. */
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "verbs.h"

#define PROGRAM "pm-stage1"

typedef struct Verb {
        const char *name;
        int (*run)(int argc, char *argv[]);
} Verb;

static const Verb verbs[] = {
        { "run", pm_verb_run },
        { "stop", pm_verb_stop },
        { "list", pm_verb_list },
        { "prepare", pm_verb_prepare },
        { "cache", pm_verb_cache },
};

static void help(void) {
        printf("Usage:\n"
               "  " PROGRAM " run --name NAME [--manifest FILE] [--detach] [--timeout S] [--agent PATH]\n"
               "  " PROGRAM " stop NAME [--timeout S]\n"
               "  " PROGRAM " list [--json]\n"
               "  " PROGRAM " prepare --pod NAME --image DIR[:TAG] [--name N] [--inject [--start]]\n"
               "                  [--allow-devices] [--copy]\n"
               "  " PROGRAM " prepare --pod NAME --bundle DIR [--name N] [--inject [--start]]\n"
               "  " PROGRAM " cache ls [--json] | cache prune [--all]\n"
               "  " PROGRAM " --help | --version\n"
               "\n"
               "Starts and stops PodMutator pods: systemd booted by systemd-nspawn, with the\n"
               "PodMutator agent inside.\n"
               "\n"
               "run    Assemble the pod's root, boot it, wait until its agent answers\n"
               "       (--timeout, default %d s), then inject and start the apps of the\n"
               "       manifest. Prints \"NAME SOCKET\" once the pod is ready. With --detach\n"
               "       it returns then; otherwise it stays until the pod ends, and SIGINT or\n"
               "       SIGTERM stops the pod (a second one kills it). The agent binary is\n"
               "       --agent, else $PM_AGENT, else ../agent/podmutatord or podmutatord\n"
               "       next to this program.\n"
               "stop   Power the pod off, kill it after --timeout seconds (default %d; 0\n"
               "       kills at once), remove its directories.\n"
               "list   The pods of this node: NAME STATE PID SOCKET, or JSON with --json.\n"
               "prepare  Make an app of a running pod from an OCI image layout (a directory\n"
               "       or a tar of one; TAG picks the manifest): check every blob, unpack the\n"
               "       layers into the node's layer cache and mount them as an overlay (or\n"
               "       copy them, --copy) at /var/lib/podmutator-apps/N/rootfs in the pod,\n"
               "       write the app spec beside it and print its path; with --inject,\n"
               "       inject it (--start: and start it) and print the app id. Device\n"
               "       nodes need --allow-devices. --bundle DIR: an OCI runtime bundle\n"
               "       (config.json and its root) instead; what it asks that an app\n"
               "       cannot have is refused, naming the field.\n"
               "cache  ls: the layer cache (DIFF_ID SIZE LAST_USED, or --json); prune: remove\n"
               "       the layers no prepared app needs (--all: every layer, unless an\n"
               "       app's overlay still uses one).\n"
               "\n"
               "Environment: PM_STATE_ROOT, PM_RUN_ROOT, PM_CACHE_ROOT (base directories), PM_AGENT;\n"
               "ASAN_OPTIONS, UBSAN_OPTIONS, LSAN_OPTIONS are passed to the agent,\n"
               "SYSTEMD_NSPAWN_* and SYSTEMD_LOG_* to systemd-nspawn.\n"
               "Exit status: 0 success, 1 failure, 2 bad command line.\n",
               PM_READY_TIMEOUT_MS / 1000, PM_STOP_TIMEOUT_MS / 1000);
}

int pm_log_error(int r, const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": ", stderr);
        errno = r < 0 ? -r : r;
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        return r;
}

void pm_log_warning(const char *fmt, ...) {
        va_list ap;

        fputs(PROGRAM ": warning: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

int pm_usage_error(const char *verb, const char *fmt, ...) {
        va_list ap;

        fprintf(stderr, PROGRAM "%s%s: ", verb ? " " : "", strempty(verb));
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputs("\nTry '" PROGRAM " --help'.\n", stderr);
        return PM_EXIT_USAGE;
}

int pm_parse_seconds(const char *s, int64_t *ret_ms) {
        _cleanup_free_ char *whole = NULL;
        const char *dot = strchr(s, '.');
        uint32_t sec, frac = 0;
        size_t digits = 0;
        int r;

        whole = dot ? strndup(s, (size_t) (dot - s)) : strdup(s);
        if (!whole)
                return -ENOMEM;
        r = pm_parse_u32(whole, &sec);
        if (r < 0)
                return r;
        if (dot) {
                digits = strlen(dot + 1);
                if (digits == 0 || digits > 3)
                        return -EINVAL;
                r = pm_parse_u32(dot + 1, &frac);
                if (r < 0)
                        return r;
                for (size_t i = digits; i < 3; i++)
                        frac *= 10;
        }
        if (sec > 86400 || (sec == 86400 && frac > 0))
                return -ERANGE;
        *ret_ms = (int64_t) sec * 1000 + frac;
        return 0;
}

void pm_console_tail(const char *path, unsigned lines) {
        _cleanup_close_ int fd = -1;
        char buf[64 * 1024];
        struct stat st;
        off_t off;
        ssize_t n;
        size_t start;
        unsigned seen = 0;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0 || fstat(fd, &st) < 0) {
                pm_log_warning("cannot read the pod's console %s: %m", path);
                return;
        }
        off = st.st_size > (off_t) sizeof(buf) ? st.st_size - (off_t) sizeof(buf) : 0;
        n = pread(fd, buf, sizeof(buf), off);
        if (n < 0) {
                pm_log_warning("cannot read the pod's console %s: %m", path);
                return;
        }

        /* back from the end, over a trailing newline, to the start of the
         * lines-th line from the end */
        start = (size_t) n;
        if (start > 0 && buf[start - 1] == '\n')
                start--;
        while (start > 0) {
                if (buf[start - 1] == '\n' && ++seen == lines)
                        break;
                start--;
        }

        fprintf(stderr, "---- the last %u lines of the pod's console ----\n", lines);
        fwrite(buf + start, 1, (size_t) n - start, stderr);
        if (n > 0 && buf[n - 1] != '\n')
                fputc('\n', stderr);
        fputs("---- end of the console ----\n", stderr);
}

int main(int argc, char *argv[]) {
        const char *verb;

        umask(0022);

        if (argc < 2)
                return pm_usage_error(NULL, "missing verb");
        verb = argv[1];
        if (streq(verb, "--help") || streq(verb, "-h") || streq(verb, "help")) {
                help();
                return PM_EXIT_OK;
        }
        if (streq(verb, "--version")) {
                printf(PROGRAM " %s\n", PM_VERSION);
                return PM_EXIT_OK;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i].name, verb)) {
                        /* the verb sees itself as argv[0] */
                        optind = 0;
                        return verbs[i].run(argc - 1, argv + 1);
                }

        return pm_usage_error(NULL, "unknown verb '%s'", verb);
}
