/* Unit tests for agent/unit.c: unit file text for an app, and the mapping
 * between app ids, unit names and unit object paths.
 *
 * The property that matters most: whatever bytes a spec's argv and env
 * carry, the rendered file has the same lines, keys and sections as for a
 * benign spec, and systemd reads back exactly the bytes that were given. A
 * small decoder below applies systemd's unquoting rules to check that. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "unit.h"
#include "util.h"

typedef Podmutator__V1__AppSpec__EnvEntry EnvEntry;

#define TEST_ID "0123456789abcdef0123456789abcdef"
#define MAX_WORDS 64

static const PmUnitPaths test_paths = {
        .control_dir = "/run/podmutator",
        .state_dir = "/run/podmutatord",
};

/* A spec that borrows everything; at most MAX_WORDS argv words and env
 * entries. */
typedef struct TestSpec {
        PmAppSpec spec;
        char *argv[MAX_WORDS];
        EnvEntry env[MAX_WORDS];
        EnvEntry *env_ptrs[MAX_WORDS];
        char keys[MAX_WORDS][16];
} TestSpec;

static void test_spec_init(TestSpec *t, char *const *argv, size_t n_argv, char *const *values, size_t n_env) {
        assert_true(n_argv <= MAX_WORDS && n_env <= MAX_WORDS);
        *t = (TestSpec){ .spec = PODMUTATOR__V1__APP_SPEC__INIT };
        t->spec.name = (char *) "web";
        for (size_t i = 0; i < n_argv; i++)
                t->argv[i] = argv[i];
        t->spec.argv = t->argv;
        t->spec.n_argv = n_argv;
        for (size_t i = 0; i < n_env; i++) {
                t->env[i] = (EnvEntry) PODMUTATOR__V1__APP_SPEC__ENV_ENTRY__INIT;
                snprintf(t->keys[i], sizeof(t->keys[i]), "VAR_%u", (unsigned) (i % 1000));
                t->env[i].key = t->keys[i];
                t->env[i].value = values[i];
                t->env_ptrs[i] = &t->env[i];
        }
        t->spec.env = t->env_ptrs;
        t->spec.n_env = n_env;
}

/* Sets every optional field that the unit carries verbatim. */
static void test_spec_set_all_fields(TestSpec *t) {
        t->spec.namespace_ = (char *) "team-a";
        t->spec.working_dir = (char *) "/srv/app";
        t->spec.rootfs = (char *) "/rootfs/app";
        t->spec.user = (char *) "svc";
        t->spec.group = (char *) "svc";
        t->spec.restart = PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ON_FAILURE;
        t->spec.stop_signal = (char *) "SIGINT";
}

static char *render_ok(const PmAppSpec *spec) {
        char *text = NULL;

        assert_int_equal(pm_unit_render(spec, TEST_ID, &test_paths, &text), 0);
        assert_non_null(text);
        return text;
}

/* Words of one setting's value, decoded. */
typedef struct Words {
        char **v;
        size_t n;
} Words;

static void words_done(Words *w) {
        for (size_t i = 0; i < w->n; i++)
                free(w->v[i]);
        free(w->v);
        *w = (Words){ 0 };
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

/* Undoes pm_unit_quote the way systemd reads a setting: a list of words
 * separated by one space, each in double quotes, with the C escapes \" \\
 * \n \t \xNN, "%%" for '%' (specifiers), and in ExecStart= "$$" for '$'
 * (variable expansion). Anything systemd would read differently, such as a
 * lone '%' or '$', a raw control byte or an unknown escape, is an error:
 * fail_msg() with the reason. */
static void decode_words(const char *value, bool in_exec, Words *ret) {
        size_t len = strlen(value);
        Words w = { 0 };
        const char *p = value;

        if (*p == '\0')
                fail_msg("empty value");
        while (*p) {
                char *word = malloc(len + 1), *o = word;
                assert_non_null(word);
                if (*p != '"')
                        fail_msg("word does not start with a quote at offset %td", p - value);
                p++;
                for (;;) {
                        unsigned char c = (unsigned char) *p;
                        if (c == '\0')
                                fail_msg("unterminated quote");
                        if (c < 0x20 || c == 0x7f)
                                fail_msg("raw control byte 0x%02x at offset %td", c, p - value);
                        if (c == '"') {
                                p++;
                                break;
                        }
                        if (c == '\\') {
                                switch (p[1]) {
                                case '"': *o++ = '"'; p += 2; break;
                                case '\\': *o++ = '\\'; p += 2; break;
                                case 'n': *o++ = '\n'; p += 2; break;
                                case 't': *o++ = '\t'; p += 2; break;
                                case 'x': {
                                        if (p[2] == '\0' || p[3] == '\0')
                                                fail_msg("short \\x escape");
                                        int hi = unhex(p[2]), lo = unhex(p[3]);
                                        if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                                                fail_msg("bad \\x escape at offset %td", p - value);
                                        *o++ = (char) (hi << 4 | lo);
                                        p += 4;
                                        break;
                                }
                                default:
                                        fail_msg("unexpected escape \\%c at offset %td", p[1], p - value);
                                }
                                continue;
                        }
                        if (c == '%') {
                                if (p[1] != '%')
                                        fail_msg("specifier %%%c would be expanded", p[1]);
                                *o++ = '%';
                                p += 2;
                                continue;
                        }
                        if (c == '$' && in_exec) {
                                if (p[1] != '$')
                                        fail_msg("variable reference $%c would be expanded", p[1]);
                                *o++ = '$';
                                p += 2;
                                continue;
                        }
                        *o++ = (char) c;
                        p++;
                }
                *o = '\0';
                char **v = realloc(w.v, (w.n + 1) * sizeof(char *));
                assert_non_null(v);
                w.v = v;
                w.v[w.n++] = word;
                if (*p == ' ') {
                        p++;
                        if (*p != '"')
                                fail_msg("a separator is not followed by a word");
                } else if (*p != '\0')
                        fail_msg("junk 0x%02x after a quoted word", (unsigned char) *p);
        }
        *ret = w;
}

/* The lines of a unit file, without their newlines. */
typedef struct Lines {
        char **v;
        size_t n;
} Lines;

static void lines_done(Lines *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->v[i]);
        free(l->v);
        *l = (Lines){ 0 };
}

/* Splits text at '\n'. systemd also ends a line at '\r' and at NUL, so the
 * text must not hold any control byte but '\n', and it must end with one. */
static void split_lines(const char *text, Lines *ret) {
        Lines l = { 0 };
        size_t len = strlen(text);

        assert_true(len > 0);
        assert_int_equal(text[len - 1], '\n');
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) text[i];
                if ((c < 0x20 && c != '\n') || c == 0x7f)
                        fail_msg("raw control byte 0x%02x at offset %zu of the unit", c, i);
        }
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                char **v = realloc(l.v, (l.n + 1) * sizeof(char *));
                assert_non_null(v);
                l.v = v;
                l.v[l.n] = strndup(p, (size_t) (nl - p));
                assert_non_null(l.v[l.n]);
                l.n++;
                p = nl + 1;
        }
        *ret = l;
}

/* What a line is to systemd: a section header, a blank line, or the key of
 * an assignment with its '='. */
static char *line_key(const char *line) {
        if (line[0] == '[' || line[0] == '\0')
                return strdup(line);
        const char *eq = strchr(line, '=');
        if (!eq)
                fail_msg("line \"%.80s\" is neither a section, blank, nor an assignment", strempty(line));
        return strndup(line, (size_t) (eq - line + 1));
}

/* The value of the i-th line with the given key, NULL if there is none. */
static const char *nth_value(const Lines *l, const char *key, size_t nth) {
        size_t k = strlen(key);
        for (size_t i = 0; i < l->n; i++)
                if (strncmp(l->v[i], key, k) == 0 && nth-- == 0)
                        return l->v[i] + k;
        return NULL;
}

/* Renders a hostile spec and its benign twin (same field counts), and
 * checks that the hostile one has exactly the benign one's structure and
 * that every argv word and env entry reads back byte for byte. */
static void assert_render_contains_hostile(char *const *argv, size_t n_argv, char *const *values, size_t n_env) {
        char *benign_argv[MAX_WORDS], *benign_values[MAX_WORDS];
        TestSpec hostile, benign;
        _cleanup_free_ char *hostile_text = NULL, *benign_text = NULL;
        Lines hl, bl;

        assert_true(n_argv >= 1);
        benign_argv[0] = (char *) "/bin/app";
        for (size_t i = 1; i < n_argv; i++)
                benign_argv[i] = (char *) "arg";
        for (size_t i = 0; i < n_env; i++)
                benign_values[i] = (char *) "value";
        test_spec_init(&hostile, argv, n_argv, values, n_env);
        test_spec_init(&benign, benign_argv, n_argv, benign_values, n_env);
        test_spec_set_all_fields(&hostile);
        test_spec_set_all_fields(&benign);

        hostile_text = render_ok(&hostile.spec);
        benign_text = render_ok(&benign.spec);
        split_lines(hostile_text, &hl);
        split_lines(benign_text, &bl);

        /* Same lines, and each line has the same key as its benign twin: no
         * line, directive or section was added, removed or moved. */
        assert_int_equal(hl.n, bl.n);
        for (size_t i = 0; i < hl.n; i++) {
                _cleanup_free_ char *hk = line_key(hl.v[i]);
                _cleanup_free_ char *bk = line_key(bl.v[i]);
                if (!streq(hk, bk))
                        fail_msg("line %zu has key \"%.80s\", benign render has \"%s\"", i, hk, bk);
        }

        /* The words systemd reads are the words given. */
        const char *exec = nth_value(&hl, "ExecStart=", 0);
        assert_non_null(exec);
        assert_null(nth_value(&hl, "ExecStart=", 1));
        Words w;
        decode_words(exec, true, &w);
        assert_int_equal(w.n, n_argv);
        for (size_t i = 0; i < n_argv; i++) {
                assert_int_equal(strlen(w.v[i]), strlen(argv[i]));
                assert_memory_equal(w.v[i], argv[i], strlen(argv[i]));
        }
        words_done(&w);

        for (size_t i = 0; i < n_env; i++) {
                const char *value = nth_value(&hl, "Environment=", i);
                _cleanup_free_ char *want = NULL;

                assert_non_null(value);
                decode_words(value, false, &w);
                assert_int_equal(w.n, 1);
                assert_true(asprintf(&want, "%s=%s", hostile.keys[i], values[i]) >= 0);
                assert_int_equal(strlen(w.v[0]), strlen(want));
                assert_memory_equal(w.v[0], want, strlen(want));
                words_done(&w);
        }
        assert_null(nth_value(&hl, "Environment=", n_env));

        lines_done(&hl);
        lines_done(&bl);
}

/* Inputs that would break out of a naive unit writer. */
static char *const hostile_strings[] = {
        (char *) "a\nb",
        (char *) "x\n[Service]\nExecStartPre=/bin/evil",
        (char *) "\nUser=root",
        (char *) "\r",
        (char *) "a\r\nRestart=always",
        (char *) "\"",
        (char *) "\" \"/bin/evil",
        (char *) "\\",
        (char *) "ends with backslash\\",
        (char *) "\\\n",
        (char *) "\\\"",
        (char *) "$HOME",
        (char *) "${PATH}",
        (char *) "$$",
        (char *) "$",
        (char *) "%h",
        (char *) "%%",
        (char *) "%",
        (char *) "100%",
        (char *) ";",
        (char *) "a ; /bin/evil",
        (char *) "\\;",
        (char *) "\t",
        (char *) "tab\there",
        (char *) "\x01\x02\x03\x04\x05\x06\x07\x08\x0b\x0c\x0e\x0f",
        (char *) "\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f",
        (char *) "\x7f",
        (char *) "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82",
        (char *) "\xe2\x80\xa8 line separator \xc2\x85 next line",
        (char *) "'single quoted'",
        (char *) "#not a comment",
        (char *) "\n#comment\n;comment",
        (char *) "two words",
        (char *) " ",
        (char *) "",
        (char *) "=",
        (char *) "A=B=C",
        (char *) "[Unit]",
        (char *) "\\x41",
        (char *) "\\n",
};

static void test_quote_escapes_each_special_byte(void **state) {
        const struct {
                const char *in;
                const char *exec;
                const char *env;
        } cases[] = {
                { "plain", "\"plain\"", "\"plain\"" },
                { "", "\"\"", "\"\"" },
                { "\"", "\"\\\"\"", "\"\\\"\"" },
                { "\\", "\"\\\\\"", "\"\\\\\"" },
                { "\n", "\"\\n\"", "\"\\n\"" },
                { "\t", "\"\\t\"", "\"\\t\"" },
                { "\r", "\"\\x0d\"", "\"\\x0d\"" },
                { "\x01", "\"\\x01\"", "\"\\x01\"" },
                { "\x1f", "\"\\x1f\"", "\"\\x1f\"" },
                { "\x7f", "\"\\x7f\"", "\"\\x7f\"" },
                { "%", "\"%%\"", "\"%%\"" },
                { "$", "\"$$\"", "\"$\"" },
                { "${X}", "\"$${X}\"", "\"${X}\"" },
                { "; '", "\"; '\"", "\"; '\"" },
                { "caf\xc3\xa9", "\"caf\xc3\xa9\"", "\"caf\xc3\xa9\"" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *exec = pm_unit_quote(cases[i].in, true);
                _cleanup_free_ char *env = pm_unit_quote(cases[i].in, false);

                assert_non_null(exec);
                assert_non_null(env);
                assert_string_equal(exec, cases[i].exec);
                assert_string_equal(env, cases[i].env);
        }
}

static void test_quote_round_trips_every_byte_value(void **state) {
        char all[256];

        for (int i = 1; i < 256; i++)
                all[i - 1] = (char) i;
        all[255] = '\0';

        for (int in_exec = 0; in_exec <= 1; in_exec++) {
                _cleanup_free_ char *q = pm_unit_quote(all, in_exec);
                Words w;

                assert_non_null(q);
                decode_words(q, in_exec, &w);
                assert_int_equal(w.n, 1);
                assert_int_equal(strlen(w.v[0]), 255);
                assert_memory_equal(w.v[0], all, 255);
                words_done(&w);
        }
}

static void test_quote_round_trips_hostile_strings(void **state) {
        for (size_t i = 0; i < ELEMENTSOF(hostile_strings); i++)
                for (int in_exec = 0; in_exec <= 1; in_exec++) {
                        _cleanup_free_ char *q = pm_unit_quote(hostile_strings[i], in_exec);
                        Words w;

                        assert_non_null(q);
                        assert_null(strchr(q, '\n'));
                        decode_words(q, in_exec, &w);
                        assert_int_equal(w.n, 1);
                        assert_string_equal(w.v[0], hostile_strings[i]);
                        words_done(&w);
                }
}

static void test_quote_survives_worst_case_expansion(void **state) {
        /* Every byte becomes four. */
        size_t n = 100 * 1024;
        _cleanup_free_ char *s = malloc(n + 1);
        _cleanup_free_ char *q = NULL;

        assert_non_null(s);
        memset(s, 0x01, n);
        s[n] = '\0';
        q = pm_unit_quote(s, true);
        assert_non_null(q);
        assert_int_equal(strlen(q), 4 * n + 2);
}

static void test_render_benign_spec_has_expected_settings(void **state) {
        char *argv[] = { (char *) "/bin/sleep", (char *) "10" };
        char *values[] = { (char *) "1" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 2, values, 1);
        test_spec_set_all_fields(&t);
        text = render_ok(&t.spec);

        const char *want[] = {
                "[Unit]\n",
                "\nDescription=PodMutator app team-a/web\n",
                "\n[Service]\n",
                "\nType=exec\n",
                "\nExecStart=\"/bin/sleep\" \"10\"\n",
                "\nRemainAfterExit=yes\n",
                "\nEnvironment=\"VAR_0=1\"\n",
                "\nWorkingDirectory=/srv/app\n",
                "\nRootDirectory=/rootfs/app\n",
                "\nUser=svc\n",
                "\nGroup=svc\n",
                "\nRestart=on-failure\n",
                "\nKillSignal=SIGINT\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(want); i++)
                if (!strstr(text, want[i]))
                        fail_msg("unit lacks \"%s\":\n%s", want[i], text);
        /* A rootfs never holds the agent's files: nothing to hide. */
        assert_null(strstr(text, "InaccessiblePaths="));
        assert_true(startswith(text, "[Unit]\n"));
        /* [Unit] comes before [Service], and each appears once. */
        assert_true(strstr(text, "[Unit]") < strstr(text, "[Service]"));
        assert_null(strstr(strstr(text, "[Unit]") + 1, "[Unit]"));
        assert_null(strstr(strstr(text, "[Service]") + 1, "[Service]"));
}

static void test_render_hides_agent_files_from_apps_in_the_pod_root(void **state) {
        char *argv[] = { (char *) "/bin/sleep", (char *) "10" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 2, NULL, 0);
        text = render_ok(&t.spec);
        /* Unprivileged: systemd's own socket and unit directories too. */
        assert_non_null(strstr(text, "\nInaccessiblePaths=-/run/podmutator -/run/podmutatord -/run/systemd/private\n"
                                     "ReadOnlyPaths=-/run/systemd -/etc/systemd\n"));
        free(text);
        t.spec.profile = PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED;
        text = render_ok(&t.spec);
        assert_non_null(strstr(text, "\nInaccessiblePaths=-/run/podmutator -/run/podmutatord\n"));
        assert_null(strstr(text, "ReadOnlyPaths="));
}

static void test_render_minimal_spec_uses_defaults(void **state) {
        char *argv[] = { (char *) "true" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        text = render_ok(&t.spec);
        assert_non_null(strstr(text, "\nDescription=PodMutator app default/web\n"));
        assert_non_null(strstr(text, "\nExecStart=\"true\"\n"));
        assert_non_null(strstr(text, "\nRestart=no\n"));
        assert_non_null(strstr(text, "\nKillSignal=SIGTERM\n"));
        assert_null(strstr(text, "Environment="));
        assert_null(strstr(text, "WorkingDirectory="));
        assert_null(strstr(text, "RootDirectory="));
        assert_null(strstr(text, "User="));
        assert_null(strstr(text, "Group="));
}

static void test_render_maps_restart_policy_and_stop_signal(void **state) {
        const struct {
                Podmutator__V1__RestartPolicy restart;
                const char *stop_signal;
                const char *want_restart;
                const char *want_kill;
                bool want_remain;
        } cases[] = {
                { PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_NO, "", "\nRestart=no\n", "\nKillSignal=SIGTERM\n",
                  true },
                { PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ON_FAILURE, "TERM", "\nRestart=on-failure\n",
                  "\nKillSignal=SIGTERM\n", true },
                { PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_ALWAYS, "SIGQUIT", "\nRestart=always\n",
                  "\nKillSignal=SIGQUIT\n", false },
                { PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_NO, "2", "\nRestart=no\n", "\nKillSignal=SIGINT\n",
                  true },
                { PODMUTATOR__V1__RESTART_POLICY__RESTART_POLICY_NO, "SIGUSR1", "\nRestart=no\n",
                  "\nKillSignal=SIGUSR1\n", true },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *argv[] = { (char *) "/bin/app" };
                TestSpec t;
                _cleanup_free_ char *text = NULL;

                test_spec_init(&t, argv, 1, NULL, 0);
                t.spec.restart = cases[i].restart;
                t.spec.stop_signal = (char *) cases[i].stop_signal;
                text = render_ok(&t.spec);
                if (!strstr(text, cases[i].want_restart) || !strstr(text, cases[i].want_kill))
                        fail_msg("case %zu: want %s and %s in:\n%s", i, cases[i].want_restart, cases[i].want_kill,
                                 text);
                /* An app that ends stays loaded with its exit status, unless
                 * it is restarted whatever happens. */
                if (!!strstr(text, "\nRemainAfterExit=yes\n") != cases[i].want_remain)
                        fail_msg("case %zu: RemainAfterExit=yes %s in:\n%s", i,
                                 cases[i].want_remain ? "missing" : "unexpected", text);
        }
}

static void test_render_doubles_percent_in_verbatim_paths(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        t.spec.working_dir = (char *) "/srv/100%/%h";
        t.spec.rootfs = (char *) "/roots/%n";
        text = render_ok(&t.spec);
        assert_non_null(strstr(text, "\nWorkingDirectory=/srv/100%%/%%h\n"));
        assert_non_null(strstr(text, "\nRootDirectory=/roots/%%n\n"));
}

static void test_render_keeps_structure_with_hostile_argv(void **state) {
        char *argv[1 + ELEMENTSOF(hostile_strings)];

        argv[0] = (char *) "/bin/app";
        for (size_t i = 0; i < ELEMENTSOF(hostile_strings); i++)
                argv[i + 1] = hostile_strings[i];
        assert_render_contains_hostile(argv, ELEMENTSOF(argv), NULL, 0);
}

static void test_render_keeps_structure_with_hostile_env_values(void **state) {
        char *argv[] = { (char *) "/bin/app" };

        assert_render_contains_hostile(argv, 1, hostile_strings, ELEMENTSOF(hostile_strings));
}

static void test_render_keeps_structure_with_hostile_argv0(void **state) {
        /* Validation keeps these out, but the writer must not rely on it for
         * line structure. */
        for (size_t i = 0; i < ELEMENTSOF(hostile_strings); i++) {
                char *argv[] = { hostile_strings[i], (char *) "x" };
                char *values[] = { hostile_strings[i] };

                assert_render_contains_hostile(argv, 2, values, 1);
        }
}

static void test_render_keeps_structure_with_100k_hostile_args(void **state) {
        size_t n = 100 * 1024;
        _cleanup_free_ char *big_argv = malloc(n + 1);
        _cleanup_free_ char *big_env = malloc(n + 1);
        const char alphabet[] = "a\n\r\"\\$%;\t\x01\x1f\x7f \xc3\xa9";

        assert_non_null(big_argv);
        assert_non_null(big_env);
        for (size_t i = 0; i < n; i++)
                big_argv[i] = big_env[i] = alphabet[i % (sizeof(alphabet) - 1)];
        big_argv[n] = big_env[n] = '\0';

        char *argv[] = { (char *) "/bin/app", big_argv, (char *) "--after" };
        char *values[] = { big_env, (char *) "small" };
        assert_render_contains_hostile(argv, ELEMENTSOF(argv), values, ELEMENTSOF(values));
}

/* A spec whose ExecStart= line is exactly `line` bytes long without its
 * newline: "ExecStart=" plus one quoted word of plain bytes. */
static int render_exec_line_of(size_t line, char **ret_text) {
        const size_t overhead = strlen("ExecStart=") + 2;
        _cleanup_free_ char *arg = malloc(line - overhead + 1);
        char *argv[] = { arg };
        TestSpec t;

        assert_non_null(arg);
        memset(arg, 'a', line - overhead);
        arg[0] = '/';
        arg[line - overhead] = '\0';
        test_spec_init(&t, argv, 1, NULL, 0);
        return pm_unit_render(&t.spec, TEST_ID, &test_paths, ret_text);
}

static void test_render_refuses_line_over_limit_with_e2big(void **state) {
        _cleanup_free_ char *ok = NULL;
        char *sentinel = (char *) "untouched", *text = sentinel;

        assert_int_equal(render_exec_line_of(PM_UNIT_LINE_MAX - 1, &ok), 0);
        assert_non_null(strstr(ok, "ExecStart="));
        assert_int_equal(render_exec_line_of(PM_UNIT_LINE_MAX + 1, &text), -E2BIG);
        assert_ptr_equal(text, sentinel);
}

static void test_render_counts_escapes_toward_line_limit(void **state) {
        /* 300 KiB of control bytes is 1.2 MiB once escaped. */
        size_t n = 300 * 1024;
        _cleanup_free_ char *arg = malloc(n + 1);
        char *sentinel = (char *) "untouched", *text = sentinel;

        assert_non_null(arg);
        memset(arg, 0x01, n);
        arg[n] = '\0';

        char *argv[] = { (char *) "/bin/app", arg };
        TestSpec t;
        test_spec_init(&t, argv, 2, NULL, 0);
        assert_int_equal(pm_unit_render(&t.spec, TEST_ID, &test_paths, &text), -E2BIG);
        assert_ptr_equal(text, sentinel);

        /* The same bytes in an Environment= line. */
        char *small_argv[] = { (char *) "/bin/app" };
        char *values[] = { arg };
        test_spec_init(&t, small_argv, 1, values, 1);
        assert_int_equal(pm_unit_render(&t.spec, TEST_ID, &test_paths, &text), -E2BIG);
        assert_ptr_equal(text, sentinel);
}

static void test_render_counts_all_argv_words_toward_line_limit(void **state) {
        /* 40 words of 30 KiB '%' each: every word fits, the line does not. */
        size_t n = 30 * 1024, n_words = 40;
        _cleanup_free_ char *arg = malloc(n + 1);
        char *argv[MAX_WORDS];
        char *sentinel = (char *) "untouched", *text = sentinel;
        TestSpec t;

        assert_non_null(arg);
        memset(arg, '%', n);
        arg[n] = '\0';
        argv[0] = (char *) "/bin/app";
        for (size_t i = 1; i < n_words; i++)
                argv[i] = arg;
        test_spec_init(&t, argv, n_words, NULL, 0);
        assert_int_equal(pm_unit_render(&t.spec, TEST_ID, &test_paths, &text), -E2BIG);
        assert_ptr_equal(text, sentinel);
}

static void test_unit_name_wraps_id(void **state) {
        char buf[64];

        pm_unit_name(TEST_ID, buf, sizeof(buf));
        assert_string_equal(buf, "pm-app@" TEST_ID ".service");
}

static void test_unit_id_from_name_round_trips(void **state) {
        char buf[64], id[PM_APP_ID_LEN + 1];

        pm_unit_name(TEST_ID, buf, sizeof(buf));
        assert_true(pm_unit_id_from_name(buf, id));
        assert_string_equal(id, TEST_ID);
}

static void test_unit_id_from_name_rejects_other_units(void **state) {
        const char *names[] = {
                "",
                "pm-app@.service",
                "pm-app@" TEST_ID,
                "pm-app@" TEST_ID ".scope",
                "pm-app@" TEST_ID ".service.d",
                "pm-app@0123456789abcdef0123456789abcde.service",   /* 31 */
                "pm-app@0123456789abcdef0123456789abcdef0.service", /* 33 */
                "pm-app@0123456789ABCDEF0123456789abcdef.service",  /* uppercase */
                "pm-app@0123456789abcdeg0123456789abcdef.service",  /* not hex */
                "pm-app@0123456789abcdef/123456789abcdef.service",
                "pm-app-" TEST_ID ".service", /* not an instance */
                "xm-app-" TEST_ID ".service",
                "podmutator.service",
        };
        char id[PM_APP_ID_LEN + 1] = "unchanged";

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (pm_unit_id_from_name(names[i], id))
                        fail_msg("\"%s\" was taken for an app unit", names[i]);
        assert_string_equal(id, "unchanged");
}

static void test_unit_id_from_path_reads_systemd_object_path(void **state) {
        char id[PM_APP_ID_LEN + 1];

        assert_true(pm_unit_id_from_path("/org/freedesktop/systemd1/unit/pm_2dapp_40" TEST_ID "_2eservice", id));
        assert_string_equal(id, TEST_ID);
}

static void test_unit_id_from_path_rejects_other_paths(void **state) {
        const char *paths[] = {
                "",
                "/org/freedesktop/systemd1/unit/pm_2dapp_40" TEST_ID,
                "/org/freedesktop/systemd1/unit/pm_2dapp_40" TEST_ID "_2escope",
                "/org/freedesktop/systemd1/unit/pm_2dapp_400123456789abcdef0123456789abcde_2eservice",
                "/org/freedesktop/systemd1/unit/pm_2dapp_400123456789ABCDEF0123456789abcdef_2eservice",
                "/org/freedesktop/systemd1/unit/podmutator_2eservice",
                "/org/freedesktop/systemd1/job/42",
                "/org/freedesktop/systemd1/unit/pm-app-" TEST_ID ".service",
        };
        char id[PM_APP_ID_LEN + 1] = "unchanged";

        for (size_t i = 0; i < ELEMENTSOF(paths); i++)
                if (pm_unit_id_from_path(paths[i], id))
                        fail_msg("\"%s\" was taken for an app unit", paths[i]);
        assert_string_equal(id, "unchanged");
}

static void assert_has(const char *text, const char *want) {
        if (!strstr(text, want))
                fail_msg("unit lacks \"%s\":\n%s", want, text);
}

static void assert_lacks(const char *text, const char *unwanted) {
        if (strstr(text, unwanted))
                fail_msg("unit has \"%s\":\n%s", unwanted, text);
}

static void test_render_unprivileged_profile_by_default(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        text = render_ok(&t.spec);
        assert_has(text, "\nCapabilityBoundingSet=" PM_UNPRIVILEGED_CAPS "\n");
        assert_has(text, "\nNoNewPrivileges=yes\n");
        assert_has(text, "\nPrivateDevices=yes\n");
        assert_has(text, "\nProtectKernelTunables=yes\n");
        assert_has(text, "\nProtectControlGroups=yes\n");
        /* The issue's line: mknod must fail in an unprivileged app. */
        assert_lacks(text, "MKNOD");
        assert_lacks(text, "SYS_ADMIN");
        assert_lacks(text, "AmbientCapabilities=");
}

static char *render_with_view(const PmAppSpec *spec) {
        PmUnitPaths paths = test_paths;
        char *text = NULL;

        paths.view_root = "/run/podmutator-view/root";
        assert_int_equal(pm_unit_render(spec, TEST_ID, &paths, &text), 0);
        assert_non_null(text);
        return text;
}

/* With a view, a default app is chrooted into it and systemd builds no
 * namespace: none of the settings that would make one are there. */
static void test_render_unprivileged_app_goes_into_the_view(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        text = render_with_view(&t.spec);
        assert_has(text, "\nRootDirectory=/run/podmutator-view/root\nMountAPIVFS=no\n");
        assert_has(text, "\nCapabilityBoundingSet=" PM_UNPRIVILEGED_CAPS "\n");
        assert_has(text, "\nNoNewPrivileges=yes\n");
        assert_lacks(text, "SYS_CHROOT");
        assert_lacks(text, "InaccessiblePaths=");
        assert_lacks(text, "Private");
        assert_lacks(text, "Protect");
}

/* Whatever could leave the chroot, and whatever has a root of its own,
 * gets systemd's namespace instead. */
static void test_render_view_only_for_those_that_cannot_leave_it(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        char *chroot_caps[] = { (char *) "CAP_CHOWN", (char *) "sys_chroot" };
        char *admin_caps[] = { (char *) "CAP_SYS_ADMIN" };
        char *mknod_caps[] = { (char *) "CAP_MKNOD", (char *) "CAP_KILL" };
        TestSpec t;
        char *text;

        test_spec_init(&t, argv, 1, NULL, 0);
        t.spec.capabilities = chroot_caps;
        t.spec.n_capabilities = 2;
        text = render_with_view(&t.spec);
        assert_lacks(text, "RootDirectory=");
        assert_has(text, "\nInaccessiblePaths=-/run/podmutator -/run/podmutatord -/run/systemd/private\n");
        assert_has(text, "\nPrivateDevices=yes\n");
        free(text);

        t.spec.capabilities = admin_caps;
        t.spec.n_capabilities = 1;
        text = render_with_view(&t.spec);
        assert_lacks(text, "RootDirectory=");
        free(text);

        /* In the view, raw devices stay out of reach whatever the set says. */
        t.spec.capabilities = mknod_caps;
        t.spec.n_capabilities = 2;
        text = render_with_view(&t.spec);
        assert_has(text, "\nRootDirectory=/run/podmutator-view/root\n");
        assert_has(text, "\nCapabilityBoundingSet=~CAP_MKNOD CAP_SYS_RAWIO\n");
        free(text);

        test_spec_init(&t, argv, 1, NULL, 0);
        t.spec.profile = PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED;
        text = render_with_view(&t.spec);
        assert_lacks(text, "RootDirectory=");
        assert_has(text, "\nInaccessiblePaths=");
        free(text);

        t.spec.profile = PODMUTATOR__V1__PROFILE__PROFILE_UNPRIVILEGED;
        t.spec.rootfs = (char *) "/srv/rootfs";
        text = render_with_view(&t.spec);
        assert_has(text, "\nRootDirectory=/srv/rootfs\n");
        assert_lacks(text, "MountAPIVFS=");
        assert_has(text, "\nPrivateDevices=yes\n");
        free(text);
}

static void test_render_privileged_profile_restricts_nothing(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        t.spec.profile = PODMUTATOR__V1__PROFILE__PROFILE_PRIVILEGED;
        text = render_ok(&t.spec);
        assert_lacks(text, "CapabilityBoundingSet=");
        assert_lacks(text, "NoNewPrivileges=");
        assert_lacks(text, "PrivateDevices=");
        assert_lacks(text, "Protect");
        t.spec.no_new_privileges = true;
        free(text);
        text = render_ok(&t.spec);
        assert_has(text, "\nNoNewPrivileges=yes\n");
}

static void test_render_capabilities_replace_the_profiles_set(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        char *caps[] = { (char *) "net_admin", (char *) "CAP_CHOWN" };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        t.spec.capabilities = caps;
        t.spec.n_capabilities = 2;
        text = render_ok(&t.spec);
        assert_has(text, "\nCapabilityBoundingSet=CAP_NET_ADMIN CAP_CHOWN\n");
        assert_lacks(text, PM_UNPRIVILEGED_CAPS);
        /* Root holds its bounding set; another user needs it ambient. */
        assert_lacks(text, "AmbientCapabilities=");
        t.spec.user = (char *) "svc";
        free(text);
        text = render_ok(&t.spec);
        assert_has(text, "\nAmbientCapabilities=CAP_NET_ADMIN CAP_CHOWN\n");
}

static void test_render_maps_resources(void **state) {
        const struct {
                uint64_t memory;
                uint32_t cpu, tasks;
                const char *want[3];
        } cases[] = {
                { 64u << 20, 1500, 32, { "\nMemoryMax=67108864\n", "\nCPUQuota=150.0%\n", "\nTasksMax=32\n" } },
                { 0, 1, 0, { "\nCPUQuota=0.1%\n" } },
                { 0, 250, 0, { "\nCPUQuota=25.0%\n" } },
                { 0, 1000000, 0, { "\nCPUQuota=100000.0%\n" } },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *argv[] = { (char *) "/bin/app" };
                Podmutator__V1__Resources res = PODMUTATOR__V1__RESOURCES__INIT;
                TestSpec t;
                _cleanup_free_ char *text = NULL;

                test_spec_init(&t, argv, 1, NULL, 0);
                res.memory_max = cases[i].memory;
                res.cpu_millis = cases[i].cpu;
                res.tasks_max = cases[i].tasks;
                t.spec.resources = &res;
                text = render_ok(&t.spec);
                for (size_t j = 0; j < 3 && cases[i].want[j]; j++)
                        assert_has(text, cases[i].want[j]);
                /* A zero is no limit: no setting at all. */
                if (cases[i].memory == 0)
                        assert_lacks(text, "MemoryMax=");
                if (cases[i].tasks == 0)
                        assert_lacks(text, "TasksMax=");
        }
}

static void test_render_mounts_use_resolved_paths(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        Podmutator__V1__Mount m[2] = { PODMUTATOR__V1__MOUNT__INIT, PODMUTATOR__V1__MOUNT__INIT };
        Podmutator__V1__Mount *ptrs[] = { &m[0], &m[1] };
        char *sources[] = { (char *) "/srv/real-data", (char *) "/srv/100%" };
        char *targets[] = { (char *) "/etc", (char *) "/mnt/%h" };
        PmUnitPaths paths = test_paths;
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        m[0].source = (char *) "/srv/data";
        m[0].target = (char *) "/link-to-outside";
        m[0].read_only = true;
        m[1].source = (char *) "/srv/100%";
        m[1].target = (char *) "/mnt/%h";
        t.spec.mounts = ptrs;
        t.spec.n_mounts = 2;
        text = render_ok(&t.spec);
        assert_has(text, "\nBindReadOnlyPaths=/srv/data:/link-to-outside\n");
        assert_has(text, "\nBindPaths=/srv/100%%:/mnt/%%h\n");
        free(text);
        text = NULL;
        paths.mount_sources = sources;
        paths.mount_targets = targets;
        assert_int_equal(pm_unit_render(&t.spec, TEST_ID, &paths, &text), 0);
        assert_has(text, "\nBindReadOnlyPaths=/srv/real-data:/etc\n");
        assert_lacks(text, "link-to-outside");
}

static void test_render_maps_network_modes(void **state) {
        const struct {
                int mode;
                const char *path, *want;
        } cases[] = {
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_POD, "", NULL },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_HOST, "", NULL },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NONE, "", "\nPrivateNetwork=yes\n" },
                { PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS, "/run/netns/b%lue",
                  "\nNetworkNamespacePath=/run/netns/b%%lue\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char *argv[] = { (char *) "/bin/app" };
                Podmutator__V1__Network net = PODMUTATOR__V1__NETWORK__INIT;
                TestSpec t;
                _cleanup_free_ char *text = NULL;

                test_spec_init(&t, argv, 1, NULL, 0);
                net.mode = cases[i].mode;
                net.netns_path = (char *) cases[i].path;
                t.spec.network = &net;
                text = render_ok(&t.spec);
                if (cases[i].want)
                        assert_has(text, cases[i].want);
                else {
                        assert_lacks(text, "PrivateNetwork=");
                        assert_lacks(text, "NetworkNamespacePath=");
                }
        }
}

static void test_render_maps_rlimits_and_read_only_root(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        Podmutator__V1__Rlimit rl[3] = { PODMUTATOR__V1__RLIMIT__INIT, PODMUTATOR__V1__RLIMIT__INIT,
                                         PODMUTATOR__V1__RLIMIT__INIT };
        Podmutator__V1__Rlimit *ptrs[] = { &rl[0], &rl[1], &rl[2] };
        TestSpec t;
        _cleanup_free_ char *text = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        rl[0].type = (char *) "RLIMIT_NOFILE", rl[0].soft = 100, rl[0].hard = 200;
        rl[1].type = (char *) "core", rl[1].soft = 0, rl[1].hard = UINT64_MAX;
        rl[2].type = (char *) "Rlimit_Cpu", rl[2].soft = UINT64_MAX, rl[2].hard = UINT64_MAX;
        t.spec.rlimits = ptrs;
        t.spec.n_rlimits = 3;
        t.spec.read_only_rootfs = true;
        text = render_ok(&t.spec);
        assert_has(text, "\nLimitNOFILE=100:200\n");
        assert_has(text, "\nLimitCORE=0:infinity\n");
        assert_has(text, "\nLimitCPU=infinity:infinity\n");
        assert_has(text, "\nProtectSystem=strict\n");
}

/* Odd but valid values: each setting stays one line of one key. */
static void test_render_isolation_values_cannot_add_lines(void **state) {
        char *argv[] = { (char *) "/bin/app" };
        Podmutator__V1__Mount m = PODMUTATOR__V1__MOUNT__INIT;
        Podmutator__V1__Mount *mp[] = { &m };
        Podmutator__V1__Network net = PODMUTATOR__V1__NETWORK__INIT;
        TestSpec t;
        _cleanup_free_ char *text = NULL, *error = NULL;

        test_spec_init(&t, argv, 1, NULL, 0);
        m.source = (char *) "/[Service]/ExecStart=/bin/sh;#%n$X";
        m.target = (char *) "/;ExecStartPre=%h";
        t.spec.mounts = mp;
        t.spec.n_mounts = 1;
        net.mode = PODMUTATOR__V1__NETWORK_MODE__NETWORK_MODE_NETNS;
        net.netns_path = (char *) "/x/[Unit]%i";
        t.spec.network = &net;
        assert_int_equal(pm_spec_validate(&t.spec, &error), 0);
        text = render_ok(&t.spec);
        assert_has(text, "\nBindPaths=/[Service]/ExecStart=/bin/sh;#%%n$X:/;ExecStartPre=%%h\n");
        assert_has(text, "\nNetworkNamespacePath=/x/[Unit]%%i\n");
        size_t lines = 0, sections = 0;
        for (const char *l = text; *l; l = strchr(l, '\n') + 1) {
                lines++;
                if (*l == '[')
                        sections++;
                assert_non_null(strchr(l, '\n'));
        }
        assert_int_equal(sections, 2);
        assert_null(strstr(text, "\nExecStartPre"));
        /* As many lines as with plain paths. */
        _cleanup_free_ char *plain = NULL;
        m.source = (char *) "/a", m.target = (char *) "/b", net.netns_path = (char *) "/c";
        plain = render_ok(&t.spec);
        size_t plain_lines = 0;
        for (const char *c = plain; *c; c++)
                plain_lines += *c == '\n';
        assert_int_equal(lines, plain_lines);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_quote_escapes_each_special_byte),
                cmocka_unit_test(test_quote_round_trips_every_byte_value),
                cmocka_unit_test(test_quote_round_trips_hostile_strings),
                cmocka_unit_test(test_quote_survives_worst_case_expansion),
                cmocka_unit_test(test_render_benign_spec_has_expected_settings),
                cmocka_unit_test(test_render_hides_agent_files_from_apps_in_the_pod_root),
                cmocka_unit_test(test_render_minimal_spec_uses_defaults),
                cmocka_unit_test(test_render_maps_restart_policy_and_stop_signal),
                cmocka_unit_test(test_render_doubles_percent_in_verbatim_paths),
                cmocka_unit_test(test_render_keeps_structure_with_hostile_argv),
                cmocka_unit_test(test_render_keeps_structure_with_hostile_env_values),
                cmocka_unit_test(test_render_keeps_structure_with_hostile_argv0),
                cmocka_unit_test(test_render_keeps_structure_with_100k_hostile_args),
                cmocka_unit_test(test_render_refuses_line_over_limit_with_e2big),
                cmocka_unit_test(test_render_counts_escapes_toward_line_limit),
                cmocka_unit_test(test_render_counts_all_argv_words_toward_line_limit),
                cmocka_unit_test(test_unit_name_wraps_id),
                cmocka_unit_test(test_unit_id_from_name_round_trips),
                cmocka_unit_test(test_unit_id_from_name_rejects_other_units),
                cmocka_unit_test(test_unit_id_from_path_reads_systemd_object_path),
                cmocka_unit_test(test_unit_id_from_path_rejects_other_paths),
                cmocka_unit_test(test_render_unprivileged_profile_by_default),
                cmocka_unit_test(test_render_unprivileged_app_goes_into_the_view),
                cmocka_unit_test(test_render_view_only_for_those_that_cannot_leave_it),
                cmocka_unit_test(test_render_privileged_profile_restricts_nothing),
                cmocka_unit_test(test_render_capabilities_replace_the_profiles_set),
                cmocka_unit_test(test_render_maps_resources),
                cmocka_unit_test(test_render_mounts_use_resolved_paths),
                cmocka_unit_test(test_render_maps_network_modes),
                cmocka_unit_test(test_render_maps_rlimits_and_read_only_root),
                cmocka_unit_test(test_render_isolation_values_cannot_add_lines),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
