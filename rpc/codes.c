#include "codes.h"

#include <errno.h>

const char *pm_code_name(PmCode code) {
        switch (code) {
        case PODMUTATOR__V1__CODE__CODE_OK: return "OK";
        case PODMUTATOR__V1__CODE__CODE_CANCELLED: return "CANCELLED";
        case PODMUTATOR__V1__CODE__CODE_INVALID_ARGUMENT: return "INVALID_ARGUMENT";
        case PODMUTATOR__V1__CODE__CODE_DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
        case PODMUTATOR__V1__CODE__CODE_NOT_FOUND: return "NOT_FOUND";
        case PODMUTATOR__V1__CODE__CODE_ALREADY_EXISTS: return "ALREADY_EXISTS";
        case PODMUTATOR__V1__CODE__CODE_PERMISSION_DENIED: return "PERMISSION_DENIED";
        case PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
        case PODMUTATOR__V1__CODE__CODE_FAILED_PRECONDITION: return "FAILED_PRECONDITION";
        case PODMUTATOR__V1__CODE__CODE_UNIMPLEMENTED: return "UNIMPLEMENTED";
        case PODMUTATOR__V1__CODE__CODE_INTERNAL: return "INTERNAL";
        case PODMUTATOR__V1__CODE__CODE_UNAVAILABLE: return "UNAVAILABLE";
        default: return "UNKNOWN";
        }
}

PmCode pm_code_from_errno(int r) {
        switch (r < 0 ? -r : r) {
        case 0: return PODMUTATOR__V1__CODE__CODE_OK;
        case EINVAL: case E2BIG: case ENAMETOOLONG: case EBADMSG:
                return PODMUTATOR__V1__CODE__CODE_INVALID_ARGUMENT;
        case ENOENT: case ESRCH: return PODMUTATOR__V1__CODE__CODE_NOT_FOUND;
        case EEXIST: return PODMUTATOR__V1__CODE__CODE_ALREADY_EXISTS;
        case EPERM: case EACCES: return PODMUTATOR__V1__CODE__CODE_PERMISSION_DENIED;
        case ENOSPC: case EMFILE: case ENFILE: case EMSGSIZE: case EBUSY:
                return PODMUTATOR__V1__CODE__CODE_RESOURCE_EXHAUSTED;
        case ETIMEDOUT: case ETIME: return PODMUTATOR__V1__CODE__CODE_DEADLINE_EXCEEDED;
        case ECANCELED: return PODMUTATOR__V1__CODE__CODE_CANCELLED;
        case ECONNREFUSED: case ECONNRESET: case EPIPE: case ENOTCONN: case EHOSTDOWN:
                return PODMUTATOR__V1__CODE__CODE_UNAVAILABLE;
        case EOPNOTSUPP: return PODMUTATOR__V1__CODE__CODE_UNIMPLEMENTED;
        default: return PODMUTATOR__V1__CODE__CODE_INTERNAL;
        }
}
