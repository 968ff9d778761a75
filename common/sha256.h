/* SHA-256 (FIPS 180-4), streaming. Content addresses of OCI blobs and
 * layers are checked with it; no other hash is needed here. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define PM_SHA256_SIZE 32
#define PM_SHA256_HEX_SIZE (2 * PM_SHA256_SIZE + 1) /* with the NUL */

typedef struct PmSha256 {
        uint32_t h[8];
        uint64_t bytes;    /* message length so far */
        uint8_t block[64]; /* a partial block */
        size_t fill;       /* bytes in block */
} PmSha256;

void pm_sha256_init(PmSha256 *c);
void pm_sha256_update(PmSha256 *c, const void *data, size_t size);
/* Writes the digest; c must be initialised again before reuse. */
void pm_sha256_final(PmSha256 *c, uint8_t ret_digest[PM_SHA256_SIZE]);
/* The digest as lowercase hex, NUL-terminated, in ret_hex. */
void pm_sha256_final_hex(PmSha256 *c, char ret_hex[PM_SHA256_HEX_SIZE]);
