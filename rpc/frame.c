#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static uint32_t read_be32(const uint8_t *p) {
        return (uint32_t) p[0] << 24 | (uint32_t) p[1] << 16 | (uint32_t) p[2] << 8 | p[3];
}

int pm_frame_encode(const PmEnvelope *env, uint8_t **ret_buf, size_t *ret_size) {
        size_t n = podmutator__v1__envelope__get_packed_size(env);
        if (n > PM_FRAME_MAX_TO_CLIENT)
                return -EMSGSIZE;
        uint8_t *buf = malloc(PM_FRAME_HEADER_SIZE + n);
        if (!buf)
                return -ENOMEM;
        buf[0] = (uint8_t) (n >> 24);
        buf[1] = (uint8_t) (n >> 16);
        buf[2] = (uint8_t) (n >> 8);
        buf[3] = (uint8_t) n;
        podmutator__v1__envelope__pack(env, buf + PM_FRAME_HEADER_SIZE);
        *ret_buf = buf;
        *ret_size = PM_FRAME_HEADER_SIZE + n;
        return 0;
}

void pm_frame_reader_init(PmFrameReader *r, size_t max_frame) {
        *r = (PmFrameReader){ .max_frame = max_frame ? max_frame : PM_FRAME_MAX };
}

void pm_frame_reader_done(PmFrameReader *r) {
        free(r->buf);
        *r = (PmFrameReader){ 0 };
}

/* The length announced by the frame at the head of the buffer, if known. */
static int head_length(const PmFrameReader *r, size_t *ret) {
        if (r->len - r->start < PM_FRAME_HEADER_SIZE)
                return 0;
        uint32_t n = read_be32(r->buf + r->start);
        if (n > r->max_frame)
                return -EMSGSIZE;
        *ret = n;
        return 1;
}

/* Every whole header in the buffer must announce a frame within the limit:
 * so the buffer never holds more than one read plus one frame. */
static int check_headers(const PmFrameReader *r) {
        size_t off = r->start;
        while (r->len - off >= PM_FRAME_HEADER_SIZE) {
                uint32_t n = read_be32(r->buf + off);
                if (n > r->max_frame)
                        return -EMSGSIZE;
                off += PM_FRAME_HEADER_SIZE + n;
                if (off > r->len)
                        break;
        }
        return 0;
}

int pm_frame_reader_feed(PmFrameReader *r, const uint8_t *data, size_t size) {
        if (size == 0)
                return 0;
        /* Consumed bytes go once per feed, not once per frame. */
        if (r->start > 0) {
                memmove(r->buf, r->buf + r->start, r->len - r->start);
                r->len -= r->start;
                r->start = 0;
        }
        size_t need = r->len + size;
        if (need > r->cap) {
                size_t cap = r->cap ? r->cap : 4096;
                while (cap < need)
                        cap *= 2;
                uint8_t *n = realloc(r->buf, cap);
                if (!n)
                        return -ENOMEM;
                r->buf = n;
                r->cap = cap;
        }
        memcpy(r->buf + r->len, data, size);
        r->len = need;
        return check_headers(r);
}

int pm_frame_reader_next(PmFrameReader *r, PmEnvelope **ret) {
        size_t body;
        int k = head_length(r, &body);
        if (k <= 0)
                return k;
        if (r->len - r->start < PM_FRAME_HEADER_SIZE + body)
                return 0;

        PmEnvelope *env = podmutator__v1__envelope__unpack(NULL, body, r->buf + r->start + PM_FRAME_HEADER_SIZE);
        r->start += PM_FRAME_HEADER_SIZE + body;
        if (r->start == r->len) {
                r->start = r->len = 0;
                /* Give back memory a large frame made us take. */
                if (r->cap > 65536 * 4) {
                        free(r->buf);
                        r->buf = NULL;
                        r->cap = 0;
                }
        }
        if (!env)
                return -EBADMSG;
        *ret = env;
        return 1;
}

void pm_envelope_free(PmEnvelope *env) {
        podmutator__v1__envelope__free_unpacked(env, NULL);
}
