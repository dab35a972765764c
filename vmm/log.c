/* The log level and start time are the process-wide state here: they are
 * configuration of the process (from -v/-q), not state of any VM, so two
 * VMs in one process share them harmlessly. */
#include "vmm/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level log_level = LOG_WARN;

static struct timespec log_start;

void log_mark_start(void)
{
	clock_gettime(CLOCK_MONOTONIC, &log_start);
}

static double log_since_start_ms(const struct timespec *now)
{
	return (double)(now->tv_sec - log_start.tv_sec) * 1000.0 +
	       (double)(now->tv_nsec - log_start.tv_nsec) / 1e6;
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

void log_set_verbosity(int verbosity)
{
	log_set_level(verbosity < 0 ? LOG_ERR : verbosity == 0 ? LOG_WARN :
		      verbosity == 1 ? LOG_INFO : LOG_DEBUG);
}

enum log_level log_get_level(void)
{
	return log_level;
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {
		[LOG_ERR] = "", [LOG_WARN] = "warning: ",
		[LOG_INFO] = "", [LOG_DEBUG] = "debug: ",
	};
	char line[1024];
	va_list ap;
	int n;

	if (level > log_level)
		return;
	if (level == LOG_DEBUG) {
		/* Debug lines carry the time since main() began, for finding
		 * where start-up time goes. */
		struct timespec now;

		clock_gettime(CLOCK_MONOTONIC, &now);
		n = snprintf(line, sizeof(line), "vmm: [%8.3f ms] ",
			     log_since_start_ms(&now));
	} else {
		n = snprintf(line, sizeof(line), "vmm: %s", prefix[level]);
	}
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	n = (int)strlen(line);
	/* The console may be a raw-mode terminal: end lines with CR LF there. */
	if (isatty(STDERR_FILENO))
		line[n++] = '\r';
	line[n++] = '\n';
	/* One write per line so lines from several threads never interleave. */
	if (write(STDERR_FILENO, line, (size_t)n) < 0) {
		/* Nothing sensible to do if stderr is gone. */
	}
}
