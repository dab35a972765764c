/* Logging for vmm's own messages: one line each, to stderr, prefixed "vmm: ".
 * Guest console output never goes through here. */
#ifndef VMM_LOG_H
#define VMM_LOG_H

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
/* From -q (negative), nothing (0), -v (1), -vv (2 or more). */
void log_set_verbosity(int verbosity);
/* Debug lines show milliseconds since this call (made first thing in main). */
void log_mark_start(void);
enum log_level log_get_level(void);
void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
