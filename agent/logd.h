/* The pod's log daemon (podmutatord --logd): see logd.c. */
#pragma once

/* Runs the daemon until SIGTERM; state_dir is the agent's. */
int pm_logd_main(const char *state_dir);
