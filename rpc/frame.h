/* Framing of the control protocol: a 4-byte big-endian length, then one
 * encoded podmutator.v1.Envelope. Limits are checked before any allocation
 * that the peer controls. See docs/protocol.md. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "podmutator.pb-c.h"

typedef Podmutator__V1__Envelope PmEnvelope;

#define PM_PROTOCOL_VERSION 1u
#define PM_FRAME_HEADER_SIZE 4u
/* Largest envelope the agent accepts from a client. */
#define PM_FRAME_MAX (4u * 1024u * 1024u)
/* Largest envelope a client accepts from the agent: an ExecSync answer
 * carries up to 16 MiB of each output stream. */
#define PM_FRAME_MAX_TO_CLIENT (40u * 1024u * 1024u)

/* Encodes env as one frame into a new buffer. -EMSGSIZE if over the limit. */
int pm_frame_encode(const PmEnvelope *env, uint8_t **ret_buf, size_t *ret_size);

/* Room a buffer keeps before stream data for pm_frame_data_prefix(). */
#define PM_FRAME_DATA_HEADROOM 48u

/* Writes, ending right at `data`, the frame header and the Envelope bytes
 * that come before `size` bytes of StreamData of stream `fd` on call
 * `call_id`, so that the data need not be copied into a frame. At least
 * PM_FRAME_DATA_HEADROOM bytes before `data` must be writable. Returns
 * where the frame starts; it is the same frame pm_frame_encode() makes. */
uint8_t *pm_frame_data_prefix(uint8_t *data, uint64_t call_id, uint32_t fd, size_t size);

/* Accumulates bytes of a stream and cuts them into envelopes. */
typedef struct PmFrameReader {
        uint8_t *buf;
        size_t start; /* bytes before it are consumed */
        size_t len;
        size_t cap;
        size_t max_frame;
} PmFrameReader;

void pm_frame_reader_init(PmFrameReader *r, size_t max_frame);
void pm_frame_reader_done(PmFrameReader *r);
/* Appends bytes; -EMSGSIZE when the frame being read is over the limit
 * (checked from its header, before buffering its body). */
int pm_frame_reader_feed(PmFrameReader *r, const uint8_t *data, size_t size);
/* 1 and *ret set when a whole frame was decoded, 0 when more bytes are
 * needed, -EBADMSG for a frame that is not an Envelope, -EMSGSIZE for an
 * oversized one. The caller frees *ret with pm_envelope_free(). */
int pm_frame_reader_next(PmFrameReader *r, PmEnvelope **ret);

void pm_envelope_free(PmEnvelope *env);
static inline void pm_envelope_freep(PmEnvelope **env) {
        if (*env)
                pm_envelope_free(*env);
}
