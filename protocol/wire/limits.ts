/** Protocol constants a client needs without the schemas (kept apart so browser bundles stay small). */

/** Descriptors per `list` page when the request names no `limit`. */
export const LIST_DEFAULT_LIMIT = 1000
/** Largest `limit` of a `list` page; a larger one is refused (PXP_ERR_VALIDATION), not clamped. */
export const LIST_MAX_LIMIT = 10000
/** Longest `cursor` a server accepts. */
export const LIST_MAX_CURSOR_LENGTH = 512
