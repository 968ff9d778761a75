/* Attaching to a streaming call (Exec, run once): stdin goes to the
 * command, its output comes back, until the agent's answer. Never blocks on
 * the socket while there is output to read, so neither side can wedge the
 * other; a slow local reader slows the remote command. */
#pragma once

#include <stdbool.h>

#include "pmclient.h"

typedef struct AttachIo {
        int in_fd;  /* streamed as the command's stdin; -1 for none */
        int out_fd; /* stream 1 */
        int err_fd; /* stream 2 */
        bool tty;   /* forward window size changes of out_fd's terminal */
} AttachIo;

/* Sends req and pumps the streams until its Response arrives (*ret).
 * SIGINT or SIGTERM cancel the command (a second one gives up). Negative
 * errno when the connection failed. */
int pm_attach(PmClient *c, PmRequest *req, const AttachIo *io, PmResponse **ret);

/* The terminal size of fd, 0x0 when it is no terminal. */
void pm_terminal_size(int fd, uint32_t *ret_rows, uint32_t *ret_cols);
