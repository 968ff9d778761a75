/* Where things live, on the node and inside a pod. One place, so that
 * stage1, the agent and the client agree. */
#pragma once

/* On the node. PM_STATE_ROOT and PM_RUN_ROOT in the environment override
 * the first two (tests use that to stay out of each other's way). */
#define PM_NODE_STATE_DIR "/var/lib/podmutator/pods" /* <pod>/root, console.log, ... */
#define PM_NODE_RUN_DIR "/run/podmutator/pods"       /* <pod>/control.sock */

/* Inside a pod. */
#define PM_POD_CONTROL_DIR "/run/podmutator"          /* bind of the node's run dir */
#define PM_POD_CONTROL_SOCKET "/run/podmutator/control.sock"
#define PM_POD_STATE_DIR "/run/podmutatord"           /* agent state: apps/, exit/ */
#define PM_POD_VIEW_DIR "/run/podmutator-view"        /* the app view (agent/view.h) */
#define PM_POD_VIEW_ROOT PM_POD_VIEW_DIR "/root"      /* its root, what apps are chrooted into */
#define PM_POD_AGENT_BINARY "/opt/podmutator/podmutatord"
#define PM_POD_TARGET "pm-pod.target"
#define PM_POD_AGENT_UNIT "podmutator.service"
#define PM_POD_LOGD_UNIT "pm-logd.service"     /* the agent binary, run with --logd */
#define PM_POD_LOGKEEP_UNIT "pm-logkeep.service" /* the agent binary, run with --logkeep */
#define PM_POD_LOG_DIR "/var/log"               /* <namespace>/<name>.log */

#define PM_CONTROL_SOCKET_NAME "control.sock"
