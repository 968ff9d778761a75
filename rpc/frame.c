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

static size_t varint_len(uint64_t v) {
        size_t n = 1;
        while (v >= 0x80) {
                v >>= 7;
                n++;
        }
        return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v) {
        while (v >= 0x80) {
                *p++ = (uint8_t) (v | 0x80);
                v >>= 7;
        }
        *p++ = (uint8_t) v;
        return p;
}

/* Protobuf wire format of Envelope{call_id = 1, data = 4 {fd = 1, data = 2}};
 * proto3 leaves out fields that hold their default. */
uint8_t *pm_frame_data_prefix(uint8_t *data, uint64_t call_id, uint32_t fd, size_t size) {
        size_t inner = (fd ? 1 + varint_len(fd) : 0) + (size ? 1 + varint_len(size) + size : 0);
        size_t env = (call_id ? 1 + varint_len(call_id) : 0) + 1 + varint_len(inner) + inner;
        size_t prefix = PM_FRAME_HEADER_SIZE + env - size;
        uint8_t *start = data - prefix, *p = start;
        p[0] = (uint8_t) (env >> 24);
        p[1] = (uint8_t) (env >> 16);
        p[2] = (uint8_t) (env >> 8);
        p[3] = (uint8_t) env;
        p += PM_FRAME_HEADER_SIZE;
        if (call_id) {
                *p++ = 0x08;
                p = put_varint(p, call_id);
        }
        *p++ = 0x22;
        p = put_varint(p, inner);
        if (fd) {
                *p++ = 0x08;
                p = put_varint(p, fd);
        }
        if (size) {
                *p++ = 0x12;
                p = put_varint(p, size);
        }
        return start;
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
