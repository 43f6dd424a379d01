/*
 * Error codes by name (hl_error_t, include/heaplib.h).
 */
#include "api/api.h"

HL_EXPORT const char *hl_strerror(hl_error_t err)
{
	switch (err) {
	case HL_OK: return "success";
	case HL_ENOMEM: return "out of memory: every qualifying region or the task's quota is full";
	case HL_EINVAL: return "invalid argument";
	case HL_ENOREGION: return "no region satisfies the constraint";
	case HL_EAGAIN: return "would have to wait (HL_NOWAIT)";
	case HL_EPERM: return "not permitted (a rule, or a system limit such as RLIMIT_MEMLOCK)";
	case HL_EBUSY: return "busy: still holds memory or threads";
	}
	return "unknown error";
}
