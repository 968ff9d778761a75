/* The pod's root directory on the node: the skeleton that systemd-nspawn
 * boots (host /usr is bound over the empty usr/ at boot), a generated /etc,
 * and the pod's own units:
 *
 *   pm-pod.target       the default target; wants only the agent and
 *                       journald, so the pod runs with zero apps and no app
 *                       can fail it
 *   podmutator.service  the agent, Type=notify with a watchdog, restarted
 *                       whatever happens to it
 *
 * Apps are never written here: the agent writes them into the pod's
 * /run/systemd/system at runtime. */
#pragma once

typedef struct PmRootConfig {
        const char *root_dir; /* created by the caller, empty */
        const char *name;     /* the pod's name: hostname, --pod-name */
        char *const *env;     /* "KEY=VALUE" entries for the agent's unit, or NULL */
} PmRootConfig;

/* Fills config->root_dir. On failure returns a negative errno and a
 * message naming the file at fault. */
int pm_root_assemble(const PmRootConfig *config, char **ret_error);

/* The text of the units, as pm_root_assemble() writes them. */
int pm_unit_pod_target(const char *name, char **ret);
int pm_unit_agent_service(const char *name, char *const *env, char **ret);
/* pm-logd.service: the agent binary as the pod's log daemon. */
int pm_unit_logd_service(const char *name, char *const *env, char **ret);
int pm_unit_logkeep_service(const char *name, char *const *env, char **ret);

/* One Environment= value for a unit file: "KEY=VALUE" in double quotes,
 * with '\\' and '"' escaped, '%' doubled (specifiers), control characters
 * as \xNN, so no value can end the line, add a directive or expand to
 * something else. -EINVAL if it is not KEY=VALUE with a valid name, or not
 * valid UTF-8. */
int pm_unit_env_quote(const char *assignment, char **ret);
