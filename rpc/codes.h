/* Names of the status codes, as the CLI and docs spell them. */
#pragma once

#include "podmutator.pb-c.h"

typedef Podmutator__V1__Code PmCode;

/* "NOT_FOUND" for PODMUTATOR__V1__CODE__CODE_NOT_FOUND; "UNKNOWN" otherwise. */
const char *pm_code_name(PmCode code);
/* Maps a negative errno to the code that best describes it. */
PmCode pm_code_from_errno(int r);
